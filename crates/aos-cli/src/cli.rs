//! The command line, as `interfaces.md` §2 names it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Examples and environment, after the top-level help.
const AFTER_HELP: &str = "\
Examples:
  aos daemon start --detach              start the daemon in the background (~/.aos)
  aos run \"list the files here\"          one-shot: agent, session, answer (Ctrl-C interrupts)
  aos send SESSION \"and now?\" --stream   talk to a session, its messages on stderr
  aos session history SESSION --format text
  aos call --list                        every syscall; aos call OP --payload JSON calls one
  aos skill new notes --template command && aos skill build notes
  aos completions bash > ~/.local/share/bash-completion/completions/aos

Output: one JSON document on stdout (--pretty indents); logs on stderr.
Exit status: 0 ok, 1 the command failed, 2 bad usage, 3 no daemon reachable
or the daemon could not start, 130 interrupted with Ctrl-C.

Environment (client): AOS_HOME (~/.aos), AOS_API_URL, AOS_API_TOKEN,
AOS_SESSION_ID (set in an agent's bash).
Environment (daemon): AOS_PORT (8420), AOS_BIND (127.0.0.1), AOS_DB_URL
(sqlite://$AOS_HOME/aos.db, or postgres://…), AOS_SKILL_ROOT (./skills),
AOS_BUILTIN_SKILLS, AOS_LLM_BASE_URL, AOS_LLM_API_KEY (or OPENROUTER_*),
AOS_MODEL, AOS_NODE_ID, AOS_SYSTEM_NAME, AOS_LEASE_TTL_MS, AOS_BASH_SANDBOX
(on|off), AOS_BASH_USER, AOS_MAX_CONNECTIONS, AOS_HEADER_TIMEOUT_MS, AOS_LOG
(info; a bare level applies to AgentOS's crates only), AOS_LOG_FORMAT (json),
AOS_WASM_POOLING, AOS_WASM_DIRECT.
More: docs/operations.md (operators), docs/skill-authoring.md (skill authors).";

/// AgentOS: an operating system for AI agents.
#[derive(Debug, Parser)]
#[command(name = "aos", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Indent the JSON output.
    #[arg(long, global = true)]
    pub pretty: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop or inspect the daemon.
    #[command(subcommand)]
    Daemon(DaemonCmd),
    /// Call any syscall: `aos call system.get`, `aos call agent.get --payload '{"agentId":"…"}'`.
    Call {
        /// The op, e.g. `session.append` (see `aos call --list`).
        #[arg(required_unless_present = "list")]
        op: Option<String>,
        /// List every op (kind, capability group, whether an agent's bash
        /// may call it) instead; needs no daemon.
        #[arg(long, conflicts_with_all = ["op", "payload"])]
        list: bool,
        /// The parameters as a JSON object, or `-` to read them from stdin.
        #[arg(long)]
        payload: Option<String>,
    },
    /// Agents.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Skills.
    #[command(subcommand)]
    Skill(SkillCmd),
    /// Stored content.
    #[command(subcommand)]
    Content(ContentCmd),
    /// The agent's bash sandbox on this machine.
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Messages to other agents (through the `aos-a2a` service).
    #[command(subcommand)]
    A2a(A2aCmd),
    /// Print a shell completion script, e.g.
    /// `aos completions bash > ~/.local/share/bash-completion/completions/aos`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Dispatch a message to a session (default: wait for the answer).
    Send {
        /// Session id.
        session: String,
        /// The message.
        message: String,
        /// Wait for the dispatch to end and print its outcome (default).
        #[arg(long, conflicts_with_all = ["stream", "detach"])]
        wait: bool,
        /// Print messages on stderr as they are written, then the outcome.
        #[arg(long, conflicts_with = "detach")]
        stream: bool,
        /// Return the dispatch id at once.
        #[arg(long)]
        detach: bool,
        /// Wait in line if the session is busy.
        #[arg(long)]
        queue: bool,
    },
    /// One-shot: create an agent (unless --agent) and a session, dispatch,
    /// stream the answer to stderr, print the outcome.
    Run {
        /// The message.
        message: String,
        /// Use this agent.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Measure this machine: hook round trips, WASM instantiation and
    /// loading, SessionHistory appends. Prints one JSON document.
    Bench {
        /// Fewer iterations (seconds, not minutes).
        #[arg(long)]
        quick: bool,
        /// JSON output (the only format; accepted for scripts).
        #[arg(long)]
        json: bool,
        /// Skill root holding the built-in `my-guard` (default `./skills`).
        #[arg(long)]
        skills: Option<String>,
        /// Measure one section only: hook, wasm, store, context or turn.
        #[arg(long)]
        only: Option<String>,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StartArgs {
    /// State directory (default `$AOS_HOME` or `~/.aos`).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// Port (default `$AOS_PORT` or 8420; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to bind (default `$AOS_BIND` or 127.0.0.1).
    #[arg(long)]
    pub bind: Option<String>,
    /// Run in the background; print the daemon's address when it is ready.
    #[arg(long)]
    pub detach: bool,
    /// Database URL (default `$AOS_DB_URL` or `sqlite://$AOS_HOME/aos.db`).
    #[arg(long)]
    pub db: Option<String>,
    /// Skill root(s), `:`-separated (default `$AOS_SKILL_ROOT` or `./skills`).
    #[arg(long)]
    pub skills: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    /// Start the daemon (in the foreground unless `--detach`).
    #[command(after_help = "\
Examples:
  aos daemon start                                  foreground, ~/.aos, SQLite, ./skills
  aos daemon start --detach --port 0                background, a free port (aos daemon status shows it)
  aos daemon start --db postgres://postgres@db:5432/aos   several daemons share one PostgreSQL
  aos daemon start --skills ./mine:./skills         my skills first, then the built-in ones

A start that cannot succeed changes nothing and says why: a busy port, an
unreachable PostgreSQL (within 3 s), a SQLite directory that does not exist,
a missing skill root (exit 2). Environment: see `aos --help`.")]
    Start(StartArgs),
    /// Stop the daemon of a home directory (SIGTERM, then wait).
    Stop {
        /// State directory.
        #[arg(long)]
        home: Option<PathBuf>,
    },
    /// Is the daemon of a home directory running?
    Status {
        /// State directory.
        #[arg(long)]
        home: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Create an agent.
    Create {
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Permissions as JSON, e.g. `{"network": [443]}` (see docs/security.md).
        #[arg(long)]
        permissions: Option<String>,
    },
    /// Change an agent's name or permissions.
    Update {
        /// Agent id.
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Permissions as JSON, e.g. `{"network": "all"}` (replaces the old ones).
        #[arg(long)]
        permissions: Option<String>,
    },
    /// List agents.
    List,
    /// Show one agent.
    Get {
        /// Agent id.
        id: String,
    },
    /// Archive an agent (history is kept).
    Archive {
        /// Agent id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// What the bash sandbox enforces here: the running daemon's view, or
    /// this machine's when no daemon runs. Exit 1 when commands would be
    /// refused.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Create a session for an agent (runs its bootstrap).
    Create {
        /// Owning agent id.
        #[arg(long)]
        agent: String,
        /// Title.
        #[arg(long)]
        title: Option<String>,
    },
    /// List sessions.
    List {
        /// Only this agent's sessions.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Show one session.
    Get {
        /// Session id.
        id: String,
    },
    /// Interrupt the session's running dispatch: its command is killed and
    /// the interrupt fact written (frees a session a lost dispatch left
    /// leased, too).
    Interrupt {
        /// Session id.
        id: String,
        /// Written into the interrupt fact.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Page through a session's history in seq order.
    History {
        /// Session id.
        id: String,
        /// `json` (the syscall's answer) or `text` (one line per part, for
        /// people).
        #[arg(long, default_value = "json", value_parser = ["json", "text"])]
        format: String,
        /// First seq.
        #[arg(long)]
        from: Option<i64>,
        /// Page size.
        #[arg(long)]
        limit: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SkillCmd {
    /// The skills a session may use (through the `aos-skill` service and the
    /// discovery hooks); without a session, every skill in the skill roots
    /// with the errors of broken ones.
    List {
        /// Session id (default `$AOS_SESSION_ID`).
        #[arg(long)]
        session: Option<String>,
    },
    /// Search the skills a session may use, best match first (through
    /// `aos-skill`).
    Search {
        /// Words to look for in names and descriptions.
        #[arg(required = true)]
        query: Vec<String>,
        /// Most results.
        #[arg(long)]
        limit: Option<u32>,
        /// Session id (default `$AOS_SESSION_ID`).
        #[arg(long)]
        session: Option<String>,
    },
    /// One skill's manifest and text.
    Get {
        /// Skill name.
        name: String,
    },
    /// Load a skill's text into a session (default `$AOS_SESSION_ID`), if
    /// discovery shows it there (through `aos-skill`).
    Load {
        /// Skill name.
        name: String,
        /// Session id.
        #[arg(long)]
        session: Option<String>,
    },
    /// Start a skill's service for an owner.
    Start {
        /// Skill name.
        name: String,
        /// `system`, `agent:ID` or `session:ID`.
        #[arg(long, default_value = "system")]
        owner: String,
        /// Configuration passed to the service's `init` (a JSON object).
        #[arg(long)]
        config: Option<String>,
    },
    /// Stop a running service: one instance (`sv_…`), or every running
    /// instance of a skill (its name).
    Stop {
        /// Instance id (`sv_…`, see `aos call service.list`) or skill name.
        instance: String,
    },
    /// Restart a service from its files as they are now (after a rebuild or
    /// an edit of SKILL.md): one instance (`sv_…`), or every running
    /// instance of a skill (its name), each for the same owner and config.
    Restart {
        /// Instance id or skill name.
        target: String,
    },
    /// Take a skill's text out of a session (default `$AOS_SESSION_ID`).
    Unload {
        /// Skill name.
        name: String,
        /// Session id.
        #[arg(long)]
        session: Option<String>,
    },
    /// Build the skill in DIR (default: here) with its `build.sh`, printing
    /// the build's output on stderr; exits with its status.
    Build {
        /// The skill's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a command exported by a skill's service: standard input (when
    /// not a terminal) goes to it, its standard output and error come back
    /// as they are, and `aos` exits with its exit status.
    Run {
        /// Print the whole answer as one JSON document instead
        /// (`{stdout, stderr, exitCode}`).
        #[arg(long)]
        json: bool,
        /// Skill name.
        name: String,
        /// Arguments passed to the command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Scaffold a new skill with a WASM service in ./NAME.
    New {
        /// Skill name (lowercase letters, digits, hyphens).
        name: String,
        /// `guard`, `context-engine` or `command`.
        #[arg(long, default_value = "guard")]
        template: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum A2aCmd {
    /// Send a message to an agent (its newest session) or a session.
    #[command(group(clap::ArgGroup::new("mode").required(true).args(["silent", "notify", "wake"])))]
    Send {
        /// `ag_…` or `se_…`.
        #[arg(long)]
        to: String,
        /// Append only; the target is not woken.
        #[arg(long)]
        silent: bool,
        /// Wake the target; no answer comes back.
        #[arg(long)]
        notify: bool,
        /// Wake the target; its final answer comes back to the sender.
        #[arg(long)]
        wake: bool,
        /// The message.
        message: String,
        /// Sending session (default `$AOS_SESSION_ID`).
        #[arg(long)]
        session: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContentCmd {
    /// Read stored content by lines.
    Read {
        /// Content id.
        id: String,
        /// First line, 0-based.
        #[arg(long)]
        offset: Option<i64>,
        /// Number of lines.
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Lines matching a regex (1-based line numbers).
    Search {
        /// Content id.
        id: String,
        /// Regular expression.
        pattern: String,
    },
}
