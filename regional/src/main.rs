//! `meridian-regional`: the regional backend's command line. Everything it runs lives in
//! the library (`meridian_regional`); this file parses arguments and starts it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use meridian_shared::auth::hash_api_key;
use meridian_shared::config::Config;

#[derive(Parser)]
#[command(about = "Meridian regional backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway.
    Serve {
        /// The YAML config (see docs/CONFIG.md).
        #[arg(long, env = "MERIDIAN_CONFIG")]
        config: PathBuf,
        /// Overrides `server.listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run media jobs of one queue (`image`, `audio` or `video`) until SIGTERM; scale by
    /// running more. Needs `media:` and `data_plane:` (PostgreSQL, Redis, object store).
    Worker {
        #[arg(long, env = "MERIDIAN_CONFIG")]
        config: PathBuf,
        /// The queue: image, audio or video.
        #[arg(long)]
        media: String,
        /// Concurrent jobs in this process.
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
    },
    /// Print the SHA-256 digest of an API key, for `tenants[].api_keys[].sha256`.
    HashKey { key: String },
    /// Validate a config file and exit.
    CheckConfig { config: PathBuf },
    /// Validate a config file and print it as one line of JSON (for a Worker var).
    ConfigJson { config: PathBuf },
    /// Print the admin GraphQL schema (SDL), as checked into docs/schema.graphql.
    GraphqlSchema,
    /// The audit log: `audit verify` checks every chain of the region's tenants (or one).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chains; exits 1 if any record was changed, removed or inserted.
    Verify {
        #[arg(long, env = "MERIDIAN_CONFIG")]
        config: PathBuf,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn load(path: &PathBuf) -> Config {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
    Config::from_yaml(&text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

fn fail(msg: &str) -> ! {
    eprintln!("meridian-regional: {msg}");
    std::process::exit(2)
}

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let done = match Cli::parse().command {
        Command::HashKey { key } => {
            println!("{}", hash_api_key(&key).to_hex());
            Ok(())
        }
        Command::ConfigJson { config } => {
            println!("{}", serde_json::to_string(&load(&config)).expect("config serialises"));
            Ok(())
        }
        Command::CheckConfig { config } => {
            load(&config);
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Serve { config, listen } => {
            meridian_regional::observability::init_logs();
            let mut cfg = load(&config);
            if let Some(l) = listen {
                cfg.server.listen = l;
            }
            meridian_regional::serve::serve(cfg).await
        }
        Command::GraphqlSchema => {
            print!("{}", meridian_regional::control::graphql::schema(true).sdl());
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { config, tenant } } => match meridian_regional::serve::verify_audit(load(&config), tenant.as_deref()).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Worker { config, media, concurrency } => {
            meridian_regional::observability::init_logs();
            meridian_regional::serve::work(load(&config), &media, concurrency).await
        }
    };
    if let Err(e) = done {
        fail(&e);
    }
}
