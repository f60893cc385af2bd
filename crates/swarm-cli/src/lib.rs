//! `swarm`: private VS Code workspaces on Fly.io. Thin: parse, resolve configuration,
//! call the `swarm` library, print. Exit codes: 0 success, 1 failure, 2 bad usage or
//! invalid input (nothing changed), 130 interrupted.
//!
//! A library so the config file parser ([`settings`]) can be fuzzed from outside
//! (`crates/fuzz-support`); the binary is `src/main.rs`, which calls [`main`].

mod access;
mod backend;
pub mod cli;
mod commands;
mod output;
mod remote;
mod serve;
pub mod settings;
mod workspaces;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use crate::backend::{Backend, LocalReason, Target};
use crate::cli::{Cli, Command, TokenAction};
use crate::output::Output;
use crate::remote::{Remote, ServerTarget};
use crate::settings::Settings;
use crate::workspaces::{Workspaces, not_through_server};

/// This binary: its version and the commit it was built from (`build.rs`).
pub const BUILD: swarm::version::BuildInfo = swarm::version::BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: option_env!("SWARM_GIT_COMMIT"),
};

/// A command's failure: message and exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: String) -> Self {
        Self { code: 2, message }
    }

    /// Exit with `code` and say nothing more: `swarm exec` passing on the exit code
    /// of a command that has already printed what it had to say.
    pub fn quiet(code: u8) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }
}

impl From<swarm::Error> for Failure {
    fn from(error: swarm::Error) -> Self {
        let code = u8::try_from(error.exit_code()).unwrap_or(1);
        Self {
            code,
            message: error.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        // Settings problems found while connecting are bad input, not failures.
        if error.downcast_ref::<settings::SettingsError>().is_some() {
            return Self::usage(format!("{error:#}"));
        }
        if error
            .downcast_ref::<swarm::store::StoreError>()
            .is_some_and(swarm::store::StoreError::is_refused_unchanged)
        {
            return Self::usage(format!("{error:#}"));
        }
        if let Some(swarm) = error.downcast_ref::<swarm::Error>() {
            let code = u8::try_from(swarm.exit_code()).unwrap_or(1);
            return Self {
                code,
                message: format!("{error:#}"),
            };
        }
        Self {
            code: 1,
            message: format!("{error:#}"),
        }
    }
}

/// The whole `swarm` command: parses the process's arguments, runs, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let code = u8::try_from(error.exit_code()).unwrap_or(2);
            if code != 0 && json_requested(std::env::args_os()) {
                let message = error.render().to_string();
                let message = message.trim().trim_start_matches("error: ");
                let doc = serde_json::json!({"error": message, "exit_code": code});
                let _ = Output::new(true, false).json(&doc);
            }
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let env = settings::process_env();
    let out = Output::new(
        cli.global.json,
        env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let json_logs = matches!(
        &cli.command,
        Command::Serve(args) if args.log_format == cli::LogFormat::Json
    );
    init_tracing(cli.global.verbose, &env, json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            out.error(format!("cannot start the async runtime: {error}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, &env, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.message.is_empty() => ExitCode::from(failure.code),
        Err(failure) => {
            if out.json {
                let doc = serde_json::json!({"error": failure.message, "exit_code": failure.code});
                let _ = out.json(&doc);
            }
            out.error(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Whether `--json` is among the arguments, for errors found before they are parsed:
/// a script asking for JSON gets its error document even for a usage error.
fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// Logs go to stderr; `json` (from `swarm serve --log-format json`) writes one JSON
/// object a line. Tokens never reach a log: they are secrets everywhere below.
fn init_tracing(verbose: u8, env: &settings::Env, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = env
        .get("SWARM_LOG")
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

async fn run(cli: Cli, env: &settings::Env, out: &Output) -> Result<(), Failure> {
    if let Command::Completions(args) = &cli.command {
        let shell = match args.shell {
            cli::Shell::Bash => clap_complete::Shell::Bash,
            cli::Shell::Zsh => clap_complete::Shell::Zsh,
            cli::Shell::Fish => clap_complete::Shell::Fish,
            cli::Shell::Elvish => clap_complete::Shell::Elvish,
            cli::Shell::Powershell => clap_complete::Shell::PowerShell,
        };
        clap_complete::generate(shell, &mut Cli::command(), "swarm", &mut std::io::stdout());
        return Ok(());
    }
    let settings = Settings::resolve(&cli.global, env)?;
    let server = ServerTarget::resolve(
        cli.global.server.as_deref(),
        cli.global.token_file.as_deref(),
        env,
    )?;
    if server.is_some() && cli.global.local {
        return Err(Failure::usage(
            "--local and --server (or SWARM_SERVER) exclude each other: the server decides which Fly.io it uses".into(),
        ));
    }
    let target = Target::resolve(cli.global.local, env);
    if let Command::Config = cli.command {
        return commands::config(out, &settings, &target, server.as_ref());
    }
    if let Some(server) = server {
        return run_through_server(cli.command, server, out, &settings).await;
    }
    if let Target::Local { reason } = &target {
        let why = match reason {
            LocalReason::NoToken => "no Fly.io token found",
            LocalReason::Forced => "--local",
        };
        out.warn(format!(
            "using the local Fly.io on this machine ({why}); `swarm config` tells more"
        ));
    }
    // Bad input is refused before anything is opened, started or called.
    check_input(&cli.command)?;
    if let Command::Create(args) = &cli.command {
        let options = commands::create_options(args)?;
        swarm::validate::validate_create(&options, &settings.swarm_config()?)
            .map_err(|errors| Failure::from(swarm::Error::Invalid(errors)))?;
    }
    if let Command::Pool(cli::PoolArgs {
        action: cli::PoolAction::Fill(args),
    }) = &cli.command
    {
        let (region, size) = commands::pool_fill_target(&settings, args)?;
        swarm::validate_pool_fill(&region, size, &settings.swarm_config()?)?;
    }
    if let Command::Move(args) = &cli.command {
        swarm::validate::validate_region(&args.region, &settings.swarm_config()?)
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    if let Command::Token(args) = cli.command {
        let TokenAction::Create(create) = &args.action;
        swarm_controller::auth::validate_user(&create.user)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let store = backend::store_only(&settings, &target).await?;
        let result = serve::token(&store, out, args).await;
        store.close().await;
        return result;
    }
    if let Command::Serve(args) = &cli.command {
        serve::listen_address(args)?;
        let backend = Backend::connect(&settings, &target, env).await?;
        return serve::serve(backend, out, args, settings.quotas.value).await;
    }
    let backend = Workspaces::Local(Box::new(Backend::connect(&settings, &target, env).await?));
    run_command(backend, out, &settings, cli.command).await
}

/// The checks that need no configuration: the same here and through a server.
fn check_input(command: &Command) -> Result<(), Failure> {
    if let Some(name) = command.workspace_name() {
        swarm::validate::validate_name(name).map_err(|e| Failure::usage(e.to_string()))?;
    }
    access::check_input(command)?;
    if let Command::Create(args) = command {
        commands::create_options(args)?;
    }
    match command {
        Command::Update(args) => swarm::validate::validate_image(&args.image)
            .map_err(|e| Failure::usage(e.to_string()))?,
        Command::Restore(args) => swarm::validate::validate_snapshot_id(&args.snapshot)
            .map_err(|e| Failure::usage(e.to_string()))?,
        _ => {}
    }
    if let Command::Password(args) = command
        && !args.rotate
    {
        return Err(Failure::usage(format!(
            "password: give --rotate (e.g. `swarm password {} --rotate`); passwords are never stored, so only a new one can be shown",
            args.name
        )));
    }
    Ok(())
}

/// `--server`: the same commands through a Swarm Controller. Sizes, regions and
/// defaults are the server's, so it checks them (and says what is wrong, exit 2).
async fn run_through_server(
    command: Command,
    server: ServerTarget,
    out: &Output,
    settings: &Settings,
) -> Result<(), Failure> {
    match &command {
        Command::Pool(_) => return Err(not_through_server("pool")),
        Command::Serve(_) => return Err(not_through_server("serve")),
        Command::Token(_) => return Err(not_through_server("token create")),
        _ => {}
    }
    check_input(&command)?;
    if server.sends_token_in_the_clear() {
        out.warn(format!(
            "{} is plain http to another machine: the API token travels unencrypted; put the server behind TLS (https://)",
            server.shown_url()
        ));
    }
    let remote = Remote::new(server)?;
    // Before anything is sent that could change something.
    remote.check_version().await?;
    let workspaces = Workspaces::Remote(remote);
    run_command(workspaces, out, settings, command).await
}

/// Runs a workspace command until it ends or Ctrl-C.
async fn run_command(
    workspaces: Workspaces,
    out: &Output,
    settings: &Settings,
    command: Command,
) -> Result<(), Failure> {
    let interrupted = workspaces.interrupted_message();
    let result = tokio::select! {
        result = dispatch(&workspaces, out, settings, command) => result,
        _ = tokio::signal::ctrl_c() => Err(Failure {
            code: 130,
            message: interrupted.into(),
        }),
    };
    workspaces.close().await;
    result
}

async fn dispatch(
    backend: &Workspaces,
    out: &Output,
    settings: &Settings,
    command: Command,
) -> Result<(), Failure> {
    match command {
        Command::Create(args) => commands::create(backend, out, args).await,
        Command::List => commands::list(backend, out).await,
        Command::Cost(args) => commands::cost(backend, out, args.name.as_deref()).await,
        Command::Show(args) => commands::show(backend, out, &args.name).await,
        Command::Start(args) => commands::start(backend, out, &args.name).await,
        Command::Stop(args) => commands::stop(backend, out, args).await,
        Command::Suspend(args) => commands::suspend(backend, out, &args.name).await,
        Command::Delete(args) => commands::delete(backend, out, args).await,
        Command::Health(args) => commands::health(backend, out, &args.name).await,
        Command::Logs(args) => commands::logs(backend, out, args).await,
        Command::Exec(args) => access::exec(backend, out, args).await,
        Command::Secret(args) => access::secret(backend, out, args).await,
        Command::Password(args) => commands::password(backend, out, args).await,
        Command::Resize(args) => commands::resize(backend, out, args).await,
        Command::Update(args) => commands::update(backend, out, args).await,
        Command::Versions(args) => commands::versions(backend, out, &args.name).await,
        Command::Rollback(args) => commands::rollback(backend, out, args).await,
        Command::Move(args) => commands::move_region(backend, out, args).await,
        Command::Snapshot(args) => commands::snapshot(backend, out, args).await,
        Command::Restore(args) => commands::restore(backend, out, args).await,
        Command::Reconcile => commands::reconcile(backend, out).await,
        Command::Pool(args) => commands::pool(backend, out, settings, args).await,
        Command::Config | Command::Completions(_) | Command::Serve(_) | Command::Token(_) => Ok(()),
    }
}
