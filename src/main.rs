use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confab::app::Application;
use confab::config::Config;

/// Self-hostable chat backend: REST + Socket.IO + OTP login + mail worker in one binary.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (TOML). Default: ./confab.toml when present.
    #[arg(long, env = "CONFAB_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration, secrets masked, and exit.
    Config,
    /// Print the OpenAPI spec and exit.
    Openapi,
    /// Prepare a MongoDB database written by the original for confab: list the changes
    /// (emails to normalise, addresses that differ only in case, invalid ones), and make
    /// them with --apply.
    Migrate {
        /// Make the changes (without it, nothing is written).
        #[arg(long)]
        apply: bool,
    },
    /// Ask the running server's `/healthz` at the configured address; exit 0 when it
    /// answers 200 within 2 s, else 1. For container HEALTHCHECKs: no shell or curl needed.
    Healthcheck,
    /// Write a consistent backup of the embedded store (SQLite, stored images, secrets)
    /// to FILE, while the server keeps running. The file holds secrets: keep it safe.
    Backup { file: PathBuf },
    /// Unpack a backup made by `confab backup` into the configured data_dir, which must
    /// not hold a store yet. Start confab afterwards.
    Restore { file: PathBuf },
    /// Manage the admin console's token.
    AdminToken {
        /// Make a new token and print it here (never to a log). The old token and every
        /// open console session stop working at once, in running servers too.
        #[arg(long)]
        reset: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            print!("{}", config.to_masked_toml());
            match config.validate() {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Openapi => {
            println!("{}", confab::http::spec_json());
            ExitCode::SUCCESS
        }
        Command::Healthcheck => {
            let settings = match config.validate() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            match runtime.block_on(healthcheck(&settings.listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("{e:#}")),
            }
        }
        Command::AdminToken { reset } => admin_token(&config, reset),
        Command::Backup { file } => backup(&config, &file),
        Command::Restore { file } => match confab::backup::restore(&file, &config.data_dir) {
            Ok(summary) => {
                println!("restored {} into {}: {summary}", file.display(), config.data_dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("{e:#}")),
        },
        Command::Migrate { apply } => {
            let settings = match config.validate() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            match runtime.block_on(migrate(settings, apply)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("{e:#}")),
            }
        }
        Command::Serve => {
            let settings = match config.validate() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            init_logging(&settings.config.log);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            match runtime.block_on(serve(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("{e:#}")),
            }
        }
    }
}

fn backup(config: &Config, file: &std::path::Path) -> ExitCode {
    if config.mongo_uri.is_some() {
        return fail(
            "the store is MongoDB: back it up with mongodump, and the media directory (or Cloudinary) beside it; \
             see the README's Backup section",
        );
    }
    let started = std::time::Instant::now();
    match confab::backup::create(&config.data_dir, file) {
        Ok(summary) => {
            println!("wrote {} in {:.1} s: {summary}", file.display(), started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

fn admin_token(config: &Config, reset: bool) -> ExitCode {
    if config.admin_token.is_some() {
        return fail("admin_token is set in the configuration: change it there and restart");
    }
    if !reset {
        return fail(
            "only a hash of the admin token is kept, so it cannot be shown again; \
             `confab admin-token --reset` makes a new one",
        );
    }
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        return fail(format!("creating data_dir {}: {e}", config.data_dir.display()));
    }
    match confab::secrets::reset_admin_token(&config.data_dir) {
        Ok(token) => {
            println!("{token}");
            eprintln!(
                "confab: new admin token above (only its hash is kept in {}). The old token and every open \
                 console session no longer work.",
                config.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("confab: {e}");
    ExitCode::FAILURE
}

/// GET /healthz on the first listen address (a wildcard address is asked on loopback).
async fn healthcheck(listen: &[std::net::SocketAddr]) -> anyhow::Result<()> {
    let mut addr = *listen.first().ok_or_else(|| anyhow::anyhow!("no listen address configured"))?;
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr =
            if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        addr.set_ip(loopback);
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(2)).build()?;
    let status = client.get(&url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?.status();
    anyhow::ensure!(status == reqwest::StatusCode::OK, "{url} answered {status}");
    println!("{url}: ok");
    Ok(())
}

fn init_logging(filter: &str) {
    let filter = std::env::var("RUST_LOG").ok().unwrap_or_else(|| filter.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
}

async fn serve(settings: confab::config::Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let stop = shutdown_signal();
    let app = Application::build(settings).await?;
    let state = app.state();
    let mailer = app.descriptions().mailer.clone();
    if state.settings.config.smtp_url.is_none() {
        tracing::warn!("no smtp_url configured: OTP mails are PRINTED TO THIS LOG, not sent. Set CONFAB_SMTP_URL for real delivery.");
    }
    if state.settings.config.legacy_socket_identity {
        tracing::warn!(
            "legacy_socket_identity is on: a Socket.IO connection without a token is taken to be whichever user its \
             ?userId= names, so anyone can act as anyone in real time. Serve the web client from confab's origin or \
             behind one proxy (see README) and turn it off."
        );
    }
    if let (Some(port), Some(_)) = (state.settings.web_port, &state.settings.config.web_root) {
        tracing::info!("web client at http://localhost:{port}/ (page loads on the other ports are redirected there)");
    }
    for addr in app.addrs() {
        let host = if addr.ip().is_unspecified() { "localhost".to_string() } else { addr.ip().to_string() };
        tracing::info!(
            "listening on {addr}: Swagger UI at http://{host}:{port}/docs, admin console at http://{host}:{port}/admin",
            port = addr.port()
        );
    }
    tracing::info!(mailer = %mailer, ready_in_ms = started.elapsed().as_millis() as u64, "confab ready");
    app.run(stop).await
}

async fn migrate(settings: confab::config::Settings, apply: bool) -> anyhow::Result<()> {
    use confab::ports::Store;
    use confab::store::mongo::{migrate, MongoStore};
    let Some(uri) = &settings.config.mongo_uri else {
        println!("No mongo_uri configured: the SQLite store always keeps emails normalised, nothing to migrate.");
        return Ok(());
    };
    let store = MongoStore::connect(uri).await?;
    println!("{}", store.describe());
    store.ping().await.map_err(|e| anyhow::anyhow!("MongoDB is not reachable: {e:#}"))?;
    let report = store.migrate_emails(apply).await?;
    let mut chats = std::collections::BTreeMap::new();
    for user in report.plan.duplicates.iter().flat_map(|d| std::iter::once(&d.keep).chain(&d.leave)) {
        chats.insert(user.shown_id(), store.chat_count(user).await?);
    }
    print!("{}", migrate::render(&report, &chats));
    Ok(())
}

/// Registers the stop signals at once and returns the future that waits for them.
/// Registered before "confab ready" is logged: a SIGTERM right after it (a supervisor, a
/// test) must start a graceful stop, not find the default action and kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
