//! `pyslip plan`: print the build plan and where each decision came from.

use anyhow::{Context, Result};
use pyslip_registry::{Client, ClientConfig, Platform};

use crate::cache::Cache;
use crate::cli::PlanArgs;
use crate::commands::{plan_overrides, print_stdout, python_choice};

/// Run `pyslip plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    let overrides = plan_overrides(&args.plan, Vec::new())?;
    let mut plan = pyslip_plan::plan(&args.plan.dir, &overrides)?;
    let mut notes = Vec::new();
    if args.online {
        let platform = match &args.platform {
            Some(p) => Platform::parse(p).with_context(|| format!("--platform {p}"))?,
            None => Platform::host(),
        };
        let cache = Cache::open_default()?;
        let client = Client::new(ClientConfig::default())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let (refined, warnings) = runtime.block_on(python_choice::refine(
            &client,
            &cache,
            &args.plan.dir,
            &overrides,
            plan,
            &platform,
        ))?;
        plan = refined.plan;
        notes = warnings;
    }
    if args.json {
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&plan)?))?;
    } else {
        print_stdout(&pyslip_plan::render_table(&plan))?;
    }
    for warning in plan.warnings.iter().chain(&notes) {
        if !args.json {
            eprintln!("warning: {warning}");
        }
    }
    Ok(())
}
