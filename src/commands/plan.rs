//! `pyslip plan`: print the build plan and where each decision came from.

use anyhow::Result;

use crate::cli::PlanArgs;
use crate::commands::{plan_overrides, print_stdout};

/// Run `pyslip plan`.
pub fn run(args: PlanArgs) -> Result<()> {
    let overrides = plan_overrides(&args.plan, Vec::new())?;
    let plan = pyslip_plan::plan(&args.plan.dir, &overrides)?;
    if args.json {
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&plan)?))?;
    } else {
        print_stdout(&pyslip_plan::render_table(&plan))?;
        for warning in &plan.warnings {
            eprintln!("warning: {warning}");
        }
    }
    Ok(())
}
