//! `swarm exec` and `swarm secret`: into a workspace. Secret values are read from
//! stdin or a file, held as `SecretString`, sent, and never printed.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;
use swarm::{ExecOptions, SecretAction as Done, SecretChanged};

use crate::Failure;
use crate::cli::{ExecArgs, SecretAction, SecretArgs, SecretSetArgs};
use crate::output::Output;
use crate::workspaces::Workspaces;

/// The checks that need no configuration or connection (exit 2, nothing sent).
pub fn check_input(command: &crate::cli::Command) -> Result<(), Failure> {
    match command {
        crate::cli::Command::Exec(args) => exec_options(args).map(|_| ()),
        crate::cli::Command::Secret(args) => match &args.action {
            SecretAction::Set(set) => {
                refuse_argv_value(set)?;
                check_key(&set.key)
            }
            SecretAction::Unset(unset) => check_key(&unset.key),
            SecretAction::List(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

fn exec_options(args: &ExecArgs) -> Result<ExecOptions, Failure> {
    let timeout_secs = args
        .timeout
        .as_deref()
        .map(swarm::exec::parse_exec_timeout)
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let options = ExecOptions {
        command: args.command.clone(),
        timeout_secs,
        start_first: args.start,
    };
    swarm::exec::validate_exec(&options).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(options)
}

/// A key typed as flyctl's `NAME=VALUE` holds the value: refused without echoing it.
fn check_key(key: &str) -> Result<(), Failure> {
    if key.contains('=') {
        return Err(Failure::usage(
            "invalid key: give the secret's name only (e.g. GITHUB_TOKEN); its value comes from stdin or --from-file, never the command line".into(),
        ));
    }
    swarm::secrets::validate_secret_key(key).map_err(|e| Failure::usage(e.to_string()))
}

fn refuse_argv_value(args: &SecretSetArgs) -> Result<(), Failure> {
    if args.refused_value.is_empty() {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "invalid value: `swarm secret set` takes no value on the command line (it would end up in shell history and the process list); pipe it on stdin, e.g. `printf %s \"$VALUE\" | swarm secret set {} {}`, or use --from-file PATH",
        args.name, args.key
    )))
}

pub async fn exec(backend: &Workspaces, out: &Output, args: ExecArgs) -> Result<(), Failure> {
    let options = exec_options(&args)?;
    let bar = out.spinner(if options.start_first {
        format!("starting {} if needed, then running the command", args.name)
    } else {
        format!("running the command in {}", args.name)
    });
    let result = backend.exec(&args.name, &options).await;
    bar.finish_and_clear();
    let executed = result?;
    let code = executed.output.shell_exit_code();
    if out.json {
        out.json(&executed)?;
    } else {
        if executed.started {
            out.note(format!(
                "Workspace {} was started for the command.",
                args.name
            ));
        }
        // The command's own bytes, unchanged: stdout to stdout, stderr to stderr.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(executed.output.stdout.as_bytes())
            .and_then(|()| stdout.flush());
        let mut stderr = std::io::stderr().lock();
        let _ = stderr
            .write_all(executed.output.stderr.as_bytes())
            .and_then(|()| stderr.flush());
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::quiet(code))
    }
}

pub async fn secret(backend: &Workspaces, out: &Output, args: SecretArgs) -> Result<(), Failure> {
    match args.action {
        SecretAction::Set(set) => {
            refuse_argv_value(&set)?;
            check_key(&set.key)?;
            let value = read_value(set.from_file.as_deref())?;
            let changed = backend.set_secret(&set.name, &set.key, &value).await?;
            changed_out(out, &changed)
        }
        SecretAction::Unset(unset) => {
            check_key(&unset.key)?;
            let changed = backend.unset_secret(&unset.name, &unset.key).await?;
            changed_out(out, &changed)
        }
        SecretAction::List(list) => {
            let listed = backend.list_secrets(&list.name).await?;
            if out.json {
                out.json(&listed)?;
                return Ok(());
            }
            if listed.secrets.is_empty() {
                out.note(format!(
                    "Workspace {} has no secrets. Set one with `printf %s \"$VALUE\" | swarm secret set {} NAME`.",
                    list.name, list.name
                ));
                return Ok(());
            }
            let rows = listed
                .secrets
                .into_iter()
                .map(|s| vec![s.key, s.updated_at.or(s.created_at).unwrap_or_default()])
                .collect();
            out.table(&["key", "updated"], rows)
                .context("writing the secrets")?;
            Ok(())
        }
    }
}

fn changed_out(out: &Output, changed: &SecretChanged) -> Result<(), Failure> {
    if out.json {
        out.json(changed)?;
        return Ok(());
    }
    let version = changed
        .version
        .map_or_else(String::new, |v| format!(" (secrets version {v})"));
    match changed.action {
        Done::Set => out.line(format!(
            "Secret {} set on workspace {}{version}.",
            changed.key, changed.workspace
        )),
        Done::Unset => out.line(format!(
            "Secret {} removed from workspace {}{version}.",
            changed.key, changed.workspace
        )),
    }
    out.note(format!("Note: {}.", changed.note));
    Ok(())
}

/// The value: a file's bytes as they are, or stdin without one trailing newline.
fn read_value(file: Option<&Path>) -> Result<SecretString, Failure> {
    let limit = swarm::secrets::MAX_SECRET_VALUE_BYTES;
    let (bytes, from) = match file {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|error| {
                Failure::usage(format!(
                    "invalid from-file {}: cannot read it ({error})",
                    path.display()
                ))
            })?;
            (read_limited(file, limit)?, "the file")
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure::usage(
                    "invalid value: none given; pipe it on stdin (e.g. `printf %s \"$VALUE\" | swarm secret set NAME KEY`) or use --from-file PATH (typing it here would show it on the screen)".into(),
                ));
            }
            let mut bytes = read_limited(std::io::stdin().lock(), limit)?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            (bytes, "stdin")
        }
    };
    if bytes.is_empty() {
        return Err(Failure::usage(format!(
            "invalid value: {from} gave an empty value; nothing was set"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::usage(format!(
            "invalid value: {from} is not UTF-8 text (secrets become environment variables)"
        ))
    })?;
    let value = SecretString::from(text);
    swarm::secrets::validate_secret_value(&value).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(value)
}

fn read_limited(reader: impl std::io::Read, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    reader
        .take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| Failure::usage(format!("invalid value: cannot read it ({error})")))?;
    if bytes.len() > limit {
        return Err(Failure::usage(format!(
            "invalid value: more than {limit} bytes; nothing was set"
        )));
    }
    Ok(bytes)
}
