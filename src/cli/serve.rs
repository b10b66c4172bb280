//! `etalon serve`, `etalon org create` and `etalon bench serve`: parsing and printing only; the
//! service is `etalon-server`.

use super::output;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use etalon_server::serve::{DEFAULT_MAX_BODY, ServeOptions};
use std::net::SocketAddr;
use std::time::Duration;

/// `etalon serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database: `sqlite:PATH` (default `sqlite:etalon.db`) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, default_value = "sqlite:etalon.db")]
    db: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Do not create the demo organisation and campaign on an empty database.
    #[arg(long)]
    no_demo: bool,
    /// Request logs as JSON lines (default: readable text) on standard error.
    #[arg(long)]
    log_json: bool,
}

/// `etalon org …`.
#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organisation and print its API key (shown once; only its hash is stored).
    Create {
        /// Name (unique).
        name: String,
        /// Database, as for `etalon serve`.
        #[arg(long, default_value = "sqlite:etalon.db")]
        db: String,
    },
}

/// `etalon bench …`.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Load a running server with simulated participants; report answers per second and latency.
    Serve(BenchServeArgs),
}

/// `etalon bench serve`.
#[derive(Args)]
pub struct BenchServeArgs {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Campaign join code the participants use.
    #[arg(long, default_value = "DEMO")]
    code: String,
    /// Concurrent participants.
    #[arg(long, default_value_t = 64)]
    participants: usize,
    /// Length of the run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many answers in all.
    #[arg(long)]
    max_answers: Option<u64>,
    /// Time limit of each request, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Seed of the participants' answers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Run `etalon serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.max_body == 0 {
        bail!("--max-body must be at least 1 byte");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_json {
        let _ = logs.json().try_init();
    } else {
        let _ = logs.try_init();
    }
    let options = ServeOptions {
        listen: args.listen,
        db: args.db.clone(),
        max_body: args.max_body,
        demo: !args.no_demo,
    };
    runtime()?.block_on(etalon_server::serve(options, |started| {
        let url = format!("http://{}", started.addr);
        let mut text = format!("Etalon is listening on {url} (database {})\n", args.db);
        if let Some(key) = &started.demo_key {
            text.push_str(&format!(
                "Created the demo organisation; its API key (shown once, keep it): {key}\n"
            ));
        }
        text.push_str(&format!(
            "Open {url} in a browser and type the code DEMO to take the demo test; organisations sign in at {url}/org with their key.\nTake the demo campaign (code DEMO) over the API:\n  curl -s -X POST {url}/v1/sessions -H 'Content-Type: application/json' -d '{{\"campaign_code\": \"DEMO\"}}'\nAPI description: {url}/v1/openapi.json — stop with Ctrl-C.\n"
        ));
        let _ = output::write_stdout(&text);
    }))?;
    Ok(())
}

/// Run `etalon org create`.
pub fn org(cmd: OrgCommand) -> anyhow::Result<()> {
    let OrgCommand::Create { name, db } = cmd;
    runtime()?.block_on(async {
        let store = etalon_server::storage::open(&db).await?;
        let service = etalon_server::Service::new(store);
        let (org, key) = service
            .create_org(&name)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        output::emit(&serde_json::json!({"organisation": org.name, "key": key}))
    })
}

/// Run `etalon bench serve`.
pub fn bench(cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Serve(args) = cmd;
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        bail!("--seconds must be in (0, 86400] (got {})", args.seconds);
    }
    let options = etalon_server::loadgen::LoadOptions {
        url: args.url,
        code: args.code,
        participants: args.participants,
        duration: Duration::from_secs_f64(args.seconds),
        max_answers: args.max_answers,
        timeout: Duration::from_millis(args.timeout_ms),
        seed: args.seed,
    };
    let report = runtime()?.block_on(etalon_server::loadgen::run(&options))?;
    output::emit(&serde_json::to_value(&report)?)
}
