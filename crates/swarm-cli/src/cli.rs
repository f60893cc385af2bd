//! The command line: every flag and subcommand, with help text and examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  swarm create alice                      # a workspace in the default region
  swarm create bob --region fra --cpus 2  # 2 performance CPUs (memory rises to 4096 MB)
  swarm list
  swarm logs alice -f

With no Fly token (FLY_ACCESS_TOKEN, FLY_API_TOKEN or ~/.fly/config.yml), swarm runs
against a local Fly.io on this machine and says so on stderr. `--local` forces it.

Through a team's Swarm Controller (`swarm serve`), the same commands:
  SWARM_SERVER=https://swarm.example.com SWARM_TOKEN=swt_... swarm list";

/// Private VS Code (code-server) workspaces on Fly.io.
#[derive(Debug, Parser)]
#[command(name = "swarm", version = env!("SWARM_LONG_VERSION"), about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout (nothing else goes there).
    #[arg(long, global = true)]
    pub json: bool,
    /// Use the local Fly.io (fly-sim, in-process) even when a Fly token is set.
    #[arg(long, global = true)]
    pub local: bool,
    /// Fly organization slug [env: FLY_ORG] [default: personal].
    #[arg(long, global = true, value_name = "SLUG")]
    pub org: Option<String>,
    /// The store: a file path, sqlite://PATH, or postgres://USER:PASSWORD@HOST:PORT/DB
    /// shared by several `swarm serve` replicas [env: SWARM_DB] [default: a file under the
    /// user's state dir].
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Config file [env: SWARM_CONFIG] [default: ~/.config/swarm/config.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Work through a Swarm Controller (`swarm serve`) instead of Fly.io directly
    /// [env: SWARM_SERVER]. Its API token comes from env SWARM_TOKEN or --token-file.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// File holding the API token for --server (instead of env SWARM_TOKEN). There is no
    /// flag for the token itself: the command line ends up in shell history.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace: a Fly app with a machine, a volume and IP addresses.
    #[command(after_help = "\
Examples:
  swarm create alice
  swarm create alice --region sea --cpus 2 --memory 4096 --storage 20
  swarm create alice --image codercom/code-server:4.96.4 --env GIT_AUTHOR_NAME=Alice
  swarm create alice --ip private --idle-timeout 30m

The password is printed once and never stored: keep it.")]
    Create(CreateArgs),
    /// List workspaces.
    #[command(after_help = "Examples:\n  swarm list\n  swarm list --json | jq '.[].name'")]
    List,
    /// What workspaces cost a month on Fly.io, estimated from Fly's published prices.
    #[command(after_help = "\
Examples:
  swarm cost            every workspace, and the total
  swarm cost alice      one workspace, with its snapshots
  swarm cost --json

Each workspace is priced in every state: running (CPU and memory all month, plus the
rest), stopped (its volume, the stopped machine's root filesystem, a dedicated IPv4)
and suspended (stopped plus the memory snapshot). NOW is the rate of its current state.")]
    Cost(CostArgs),
    /// Show one workspace in full.
    #[command(after_help = "Example:\n  swarm show alice")]
    Show(NameArg),
    /// Start a stopped or suspended workspace (waits until it runs; a suspended one
    /// resumes from its memory snapshot).
    #[command(after_help = "Example:\n  swarm start alice")]
    Start(NameArg),
    /// Suspend a running workspace: Fly keeps a snapshot of its memory, and `start`
    /// resumes it in a few hundred ms with its editor state (at most 2048 MB of memory).
    #[command(after_help = "Example:\n  swarm suspend alice\n  swarm start alice   # resumes")]
    Suspend(NameArg),
    /// Stop a workspace (its machine and volume are kept).
    #[command(after_help = "Examples:\n  swarm stop alice\n  swarm stop alice --force   # SIGKILL")]
    Stop(StopArgs),
    /// Delete a workspace and everything it holds on Fly.io.
    #[command(
        after_help = "Examples:\n  swarm delete alice          # asks first on a terminal\n  swarm delete alice --yes"
    )]
    Delete(DeleteArgs),
    /// Health: machine state plus a probe of code-server's /healthz.
    #[command(after_help = "Example:\n  swarm health alice")]
    Health(NameArg),
    /// Logs of a workspace's machine.
    #[command(
        after_help = "Examples:\n  swarm logs alice -n 50\n  swarm logs alice -f    # follow; Ctrl-C ends"
    )]
    Logs(LogsArgs),
    /// Run a command in a workspace's machine: its output and exit code are the command's.
    #[command(after_help = "\
Examples:
  swarm exec alice -- ls /home/coder/project
  swarm exec alice -- sh -c 'git -C /home/coder/project status'
  swarm exec alice --start --timeout 5m -- make -C /home/coder/project test

Everything after `--` is the command (no shell unless you run one). Its stdout and
stderr come out on this stdout and stderr, and swarm exits with its exit code (128+N
when signal N ended it; 124 when it ran past --timeout). A workspace that is not
running is refused (exit 2) unless --start starts it first.")]
    Exec(ExecArgs),
    /// A workspace's own secrets: Fly app secrets, env vars in its machine.
    #[command(after_help = "\
Examples:
  printf %s \"$GITHUB_TOKEN\" | swarm secret set alice GITHUB_TOKEN
  swarm secret set alice SSH_KEY --from-file ~/.ssh/id_ed25519
  swarm secret list alice
  swarm secret unset alice GITHUB_TOKEN

Values come from stdin or a file, never from the command line (it ends up in shell
history and the process list). They are kept only by Fly.io, which puts them in the
machine's env when it boots: a running workspace sees a change after its next
restart (`swarm stop` then `swarm start`).")]
    Secret(SecretArgs),
    /// Give a workspace a new password (the old one stops working at once).
    #[command(after_help = "\
Example:
  swarm password alice --rotate

The new password is printed once and never stored: keep it. Only its argon2id hash
goes to the machine; the rest of the machine's config is kept as it is.")]
    Password(PasswordArgs),
    /// Change a workspace's CPUs, memory or volume size (the volume only grows).
    #[command(after_help = "\
Examples:
  swarm resize alice --cpus 2                 # performance CPUs; memory kept or raised to fit
  swarm resize alice --memory 2048
  swarm resize alice --storage 20             # grow the volume to 20 GB (never shrinks)

Sizes follow the same rules as `swarm create`. Files on the volume are kept; a
running workspace restarts with its new size.")]
    Resize(ResizeArgs),
    /// Run another image on a workspace (the volume and its files are kept).
    #[command(after_help = "\
Examples:
  swarm update alice --image codercom/code-server:4.97.0
  swarm update alice --image ghcr.io/acme/dev-image:2026-12-01

A snapshot of the volume is taken first and every image change is recorded as a
version: `swarm versions alice` lists them, `swarm rollback alice` goes back.")]
    Update(UpdateArgs),
    /// List a workspace's image versions (the last one runs now).
    #[command(after_help = "Examples:\n  swarm versions alice\n  swarm versions alice --json")]
    Versions(NameArg),
    /// Go back to an earlier image version, or (--machine) undo the last machine change.
    #[command(after_help = "\
Examples:
  swarm rollback alice           # the version before the current one
  swarm rollback alice --to 1    # a version from `swarm versions alice`
  swarm rollback alice --machine # the machine config before the last resize/update/rollback

The image is pinned by the digest it ran with, and the version's CPU and memory come
back too. Files on the volume are kept; a snapshot is taken first when the image
changes. A second `--machine` undoes the first. See docs/RUNBOOK.md.")]
    Rollback(RollbackArgs),
    /// Move a workspace to another region (its files go with it).
    #[command(
        name = "move",
        after_help = "\
Example:
  swarm move alice --region fra

The volume is forked into the new region and a new machine started there; the old
machine and volume are removed only once the new one is healthy. A running
workspace is stopped during the copy; its URL stays the same."
    )]
    Move(MoveArgs),
    /// Volume snapshots: take one now, or list them.
    #[command(after_help = "\
Examples:
  swarm snapshot create alice
  swarm snapshot list alice

Fly also snapshots every volume daily and keeps snapshots for 5 days.")]
    Snapshot(SnapshotArgs),
    /// Restore a workspace's files from a snapshot (into a new volume).
    #[command(after_help = "\
Examples:
  swarm restore alice --snapshot vs_2Z4k9XyQ7bN1       # asks first on a terminal
  swarm restore alice --snapshot vs_2Z4k9XyQ7bN1 --yes

The snapshot is restored into a new volume and a new machine started on it; the old
volume is removed only once the restored workspace is healthy.")]
    Restore(RestoreArgs),
    /// The warm pool (opt-in): apps with a volume and IPs made ahead, so `create` is faster.
    #[command(after_help = "\
Examples:
  swarm pool fill --region ams --size 3   # keep 3 slots ready in ams
  swarm pool fill                         # region and size from [pool] in the config file
  swarm pool list                         # what each slot holds and costs per month
  swarm pool drain                        # remove every slot

`swarm create` takes a slot in its region (same IP mode, volume no bigger than asked;
a bigger ask grows it) and falls back to making everything when there is none. The
workspace's URL is then the slot's app: https://swarm-pool-<id>.fly.dev.")]
    Pool(PoolArgs),
    /// Bring records and Fly.io into agreement: finish or undo interrupted operations.
    #[command(after_help = "Example:\n  swarm reconcile")]
    Reconcile,
    /// Show the effective configuration and where each value came from.
    #[command(after_help = "Example:\n  swarm config")]
    Config,
    /// Run the Swarm Controller: a team's workspaces as a service over HTTP (/v1/...).
    #[command(after_help = "\
Examples:
  swarm serve                          # on 127.0.0.1:8080
  swarm serve --listen 0.0.0.0:8080    # behind a TLS-terminating proxy
  swarm token create --user alice      # then: curl -H 'Authorization: Bearer swt_...' ...

Prints `listening on http://HOST:PORT` first. Ctrl-C or SIGTERM stops it after the
operations under way have finished (at most 60 s; the rest stay journaled).")]
    Serve(ServeArgs),
    /// API tokens for `swarm serve`: made here, shown once, stored only as a hash.
    #[command(after_help = "\
Examples:
  swarm token create --user alice
  swarm token create --user ops --admin")]
    Token(TokenArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  swarm completions bash > ~/.local/share/bash-completion/completions/swarm"
    )]
    Completions(CompletionsArgs),
}

impl Command {
    /// The workspace a command names, if any (validated before anything else runs).
    pub fn workspace_name(&self) -> Option<&str> {
        match self {
            Self::Create(a) => Some(&a.name),
            Self::Show(a) | Self::Start(a) | Self::Suspend(a) | Self::Health(a) => Some(&a.name),
            Self::Stop(a) => Some(&a.name),
            Self::Delete(a) => Some(&a.name),
            Self::Logs(a) => Some(&a.name),
            Self::Password(a) => Some(&a.name),
            Self::Resize(a) => Some(&a.name),
            Self::Update(a) => Some(&a.name),
            Self::Versions(a) => Some(&a.name),
            Self::Rollback(a) => Some(&a.name),
            Self::Move(a) => Some(&a.name),
            Self::Restore(a) => Some(&a.name),
            Self::Snapshot(a) => match &a.action {
                SnapshotAction::Create(n) | SnapshotAction::List(n) => Some(&n.name),
            },
            Self::Cost(a) => a.name.as_deref(),
            Self::Exec(a) => Some(&a.name),
            Self::Secret(a) => Some(a.action.name()),
            Self::List
            | Self::Pool(_)
            | Self::Reconcile
            | Self::Config
            | Self::Completions(_)
            | Self::Serve(_)
            | Self::Token(_) => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// One workspace (its snapshots are counted too); every workspace when left out.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Workspace name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Workspace name: lowercase letters, digits and dashes; becomes <name>.fly.dev.
    pub name: String,
    /// Fly region code (e.g. ams, fra, sea).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Number of CPUs (1, 2, 4, 6, 8, ...).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// CPU kind: shared or performance [default: shared for 1 CPU, performance above].
    #[arg(long, value_name = "K")]
    pub cpu_kind: Option<String>,
    /// Memory in MB.
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,
    /// Volume size in GB (1 to 500).
    #[arg(long, value_name = "GB")]
    pub storage: Option<u32>,
    /// Container image (pin a tag; `latest` moves under you).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Environment variable for code-server (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Public addressing: shared (shared IPv4 + IPv6), dedicated (own IPv4), private (WireGuard only).
    #[arg(long, value_name = "MODE")]
    pub ip: Option<String>,
    /// Stop after this much inactivity (e.g. 30m, 2h; more than 60s).
    #[arg(long, value_name = "DUR")]
    pub idle_timeout: Option<String>,
    /// Dotfiles repository (https://…): cloned onto the volume, its install.sh,
    /// bootstrap.sh or setup.sh run at boot [default: `dotfiles` in the config].
    #[arg(long, value_name = "URL")]
    pub dotfiles: Option<String>,
    /// A script to run at boot, after the dotfiles (its output kept on the volume).
    #[arg(long, value_name = "FILE")]
    pub init: Option<std::path::PathBuf>,
    /// When idle: stop (code-server exits after --idle-timeout) or suspend (Fly's
    /// proxy suspends it; resumes in under a second). At most 2048 MB for suspend.
    #[arg(long, value_name = "POLICY")]
    pub idle_policy: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Workspace name.
    pub name: String,
    /// Kill at once (SIGKILL) instead of a graceful stop.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Workspace name.
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Workspace name.
    pub name: String,
    /// Replace the password with a new random one (required: passwords are never stored,
    /// so there is nothing to show).
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// Workspace name.
    pub name: String,
    /// Number of CPUs (shared: 1, 2, 4, 6, 8; performance: 1 to 16, even above 1).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// CPU kind: shared or performance [default: kept; with --cpus, shared for 1 CPU, performance above].
    #[arg(long, value_name = "K")]
    pub cpu_kind: Option<String>,
    /// Memory in MB (multiples of 256, within the CPU kind's range).
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,
    /// New volume size in GB (at least the current size; at most 500).
    #[arg(long, value_name = "GB")]
    pub storage: Option<u32>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Workspace name.
    pub name: String,
    /// The image to run (pin a tag or digest; `latest` moves under you).
    #[arg(long, value_name = "REF")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Workspace name.
    pub name: String,
    /// The version to return to [default: the one before the current].
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u32>,
    /// Return to the machine config (image and size) the workspace had before its last
    /// machine change (resize, update, rollback), instead of an image version.
    #[arg(long, conflicts_with = "to")]
    pub machine: bool,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Workspace name.
    pub name: String,
    /// The Fly region to move to (e.g. fra, sea).
    #[arg(long, value_name = "R")]
    pub region: String,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub action: SnapshotAction,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotAction {
    /// Take a snapshot of the workspace's volume now.
    #[command(after_help = "Example:\n  swarm snapshot create alice")]
    Create(NameArg),
    /// List the snapshots of the workspace's volume.
    #[command(after_help = "Example:\n  swarm snapshot list alice")]
    List(NameArg),
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(subcommand)]
    pub action: PoolAction,
}

#[derive(Debug, Subcommand)]
pub enum PoolAction {
    /// Top the pool up to N ready slots in a region.
    #[command(after_help = "\
Examples:
  swarm pool fill --region ams --size 3
  swarm pool fill            # uses [pool] region and size from the config file

Each slot is a Fly app with a volume of the default size and the default IP
addresses; it costs money while it waits (`swarm pool list` shows how much).")]
    Fill(PoolFillArgs),
    /// List the slots: region, app, volume, IPs, state and monthly cost.
    #[command(after_help = "Examples:\n  swarm pool list\n  swarm pool list --json")]
    List,
    /// Remove every slot (its app, volume and IPs).
    #[command(after_help = "Example:\n  swarm pool drain")]
    Drain,
}

#[derive(Debug, Args)]
pub struct PoolFillArgs {
    /// Fly region code [env: SWARM_POOL_REGION] [default: [pool] region, else the default region].
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Ready slots wanted in the region, 1 to 50 [env: SWARM_POOL_SIZE] [default: [pool] size].
    #[arg(long, value_name = "N")]
    pub size: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Workspace name.
    pub name: String,
    /// Snapshot id, from `swarm snapshot list NAME`.
    #[arg(long, value_name = "ID")]
    pub snapshot: String,
    /// Do not ask for confirmation (files written since the snapshot are lost).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Workspace name.
    pub name: String,
    /// Number of lines to show.
    #[arg(short = 'n', long = "lines", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub lines: u32,
    /// Keep printing new lines until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Seconds between reconcile passes (the first runs at start); 0 turns them off.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub reconcile_every: u64,
    /// Seconds between idle-policy passes, which stop a workspace code-server reports
    /// idle (`expired`) for longer than its idle timeout; 0 turns them off.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub idle_check_every: u64,
    /// Seconds of the leader lease: replicas sharing one store run the background
    /// passes on one of them, and another takes over this long after it dies.
    #[arg(long, value_name = "SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub leader_lease: u64,
    /// Log lines on stderr: `text` for people, `json` (one object a line) for a log
    /// pipeline.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `swarm serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token for a user; it is printed once.
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The user the token stands for (a-z, 0-9, '-', '_', '.', '@').
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// May see and act on every user's workspaces.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Workspace name.
    pub name: String,
    /// How long the command may run (e.g. 30s, 5m, 1h; at most 1h) [default: Fly's].
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Start the workspace first if it is not running (and wait until it runs).
    #[arg(long)]
    pub start: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
}

#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Set a secret; the value comes from stdin (or --from-file), never the command line.
    #[command(after_help = "\
Examples:
  printf %s \"$GITHUB_TOKEN\" | swarm secret set alice GITHUB_TOKEN
  swarm secret set alice SSH_KEY --from-file ~/.ssh/id_ed25519

One trailing newline is dropped from stdin (`echo` adds one); a file is taken as it is.")]
    Set(SecretSetArgs),
    /// List a workspace's secrets: names and when they were set, never values.
    #[command(after_help = "Example:\n  swarm secret list alice")]
    List(NameArg),
    /// Remove a secret.
    #[command(after_help = "Example:\n  swarm secret unset alice GITHUB_TOKEN")]
    Unset(SecretKeyArgs),
}

impl SecretAction {
    pub fn name(&self) -> &str {
        match self {
            Self::Set(a) => &a.name,
            Self::List(a) => &a.name,
            Self::Unset(a) => &a.name,
        }
    }
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// Workspace name.
    pub name: String,
    /// Secret name, an env var name (e.g. GITHUB_TOKEN).
    pub key: String,
    /// Read the value from this file (as it is) instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Not accepted: a value here would end up in shell history. Kept only to say so.
    #[arg(hide = true, num_args = 0..)]
    pub refused_value: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SecretKeyArgs {
    /// Workspace name.
    pub name: String,
    /// Secret name.
    pub key: String,
}
