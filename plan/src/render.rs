//! The human-readable table `pyslip plan` prints: one decision per row, with where it came from.

use std::fmt::Write as _;

use crate::model::{BuildPlan, FileKind, Installer, PackageManager, Source, Workload};

/// Where a value came from, in words.
pub fn describe_source(source: &Source) -> String {
    match source {
        Source::Flag { flag } => format!("flag {flag}"),
        Source::Config { file, key } => format!("{file}: {key}"),
        Source::File {
            path,
            line: Some(line),
        } => format!("{path}:{line}"),
        Source::File { path, line: None } => path.clone(),
        Source::Procfile { line } => format!("Procfile:{line}"),
        Source::Detected { file, detail } => format!("{file}: {detail}"),
        Source::Derived { from } => format!("from {from}"),
        Source::Default => "default".to_owned(),
        Source::Index {
            file,
            line: Some(line),
            detail,
        } => format!("{file}:{line}: {detail}"),
        Source::Index { file, detail, .. } => format!("{file}: {detail}"),
    }
}

fn manager_name(manager: &PackageManager) -> &'static str {
    match manager {
        PackageManager::Requirements => "requirements.txt",
        PackageManager::Pipenv { locked: true } => "pipenv (Pipfile.lock)",
        PackageManager::Pipenv { locked: false } => "pipenv (Pipfile, unlocked)",
        PackageManager::Poetry { locked: true } => "poetry (poetry.lock)",
        PackageManager::Poetry { locked: false } => "poetry (unlocked)",
        PackageManager::UvLock => "uv.lock",
        PackageManager::Pep621 => "pyproject.toml [project]",
        PackageManager::SetupPy => "setup.py / setup.cfg",
    }
}

/// Human-readable sizes: `512 B`, `3.4 KiB`, `12.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("TiB"))
}

fn lower<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}").to_lowercase()
}

/// Renders the plan as an aligned table of decisions with their sources, then warnings and
/// ignored inputs.
pub fn render_table(plan: &BuildPlan) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row =
        |key: &str, value: String, source: String| rows.push((key.to_owned(), value, source));
    row(
        "python",
        plan.python.value.clone(),
        if plan.python_candidates.len() > 1 {
            format!(
                "{}; the build may choose an older one if pinned packages have no wheels for it",
                describe_source(&plan.python.source)
            )
        } else {
            describe_source(&plan.python.source)
        },
    );
    row(
        "base",
        plan.base.value.clone(),
        describe_source(&plan.base.source),
    );
    match &plan.install {
        Some(install) => {
            let installer = match install.installer {
                Installer::Uv => "uv",
                Installer::Pip => "pip",
            };
            row(
                "install",
                format!("{} via {installer}", manager_name(&install.manager)),
                describe_source(&install.source),
            );
            row(
                "installer",
                installer.to_owned(),
                describe_source(&install.installer_source),
            );
            row("inputs", install.inputs.join(", "), String::new());
            row(
                "dependencies",
                format!(
                    "{} ({})",
                    install.dependencies.len(),
                    install.dependencies.join(", ")
                ),
                String::new(),
            );
            row(
                "install project",
                if install.install_project { "yes" } else { "no" }.to_owned(),
                String::new(),
            );
            if let Some(ws) = &install.workspace {
                row(
                    "workspace",
                    format!("member {} ({}) of {}", ws.member, ws.member_dir, ws.root),
                    format!("[{}]", crate::workspace::join(&ws.root, "pyproject.toml")),
                );
            }
            if !install.local.is_empty() {
                let local: Vec<String> = install
                    .local
                    .iter()
                    .map(|l| format!("{} ({})", l.name, l.path))
                    .collect();
                row("path dependencies", local.join(", "), String::new());
            }
        }
        None => row(
            "install",
            "none (no dependency layer)".to_owned(),
            "no requirements, lock or pyproject dependencies".to_owned(),
        ),
    }
    row(
        "framework",
        lower(&plan.framework.value),
        describe_source(&plan.framework.source),
    );
    if let Some(app) = &plan.app {
        row(
            "app",
            format!("{}:{} ({})", app.module, app.variable, app.file),
            String::new(),
        );
    }
    if let Some(server) = &plan.server {
        row(
            "server",
            lower(&server.value),
            describe_source(&server.source),
        );
    }
    let cmd = serde_json::to_string(&plan.cmd.value).unwrap_or_default();
    row("cmd", cmd, describe_source(&plan.cmd.source));
    match &plan.port {
        Some(port) => row(
            "port",
            port.value.to_string(),
            describe_source(&port.source),
        ),
        None => row("port", "none (worker)".to_owned(), String::new()),
    }
    row(
        "workload",
        if plan.workload.value == Workload::Web {
            "web"
        } else {
            "worker"
        }
        .to_owned(),
        describe_source(&plan.workload.source),
    );
    row(
        "user",
        plan.user.value.clone(),
        describe_source(&plan.user.source),
    );
    row("workdir", plan.workdir.clone(), String::new());
    let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    row("env", env.join(" "), String::new());
    if let Some(step) = &plan.collectstatic {
        let value = if step.value.run {
            format!("yes: {}", step.value.command.join(" "))
        } else {
            "no".to_owned()
        };
        row("collectstatic", value, describe_source(&step.source));
    }
    if let Some(release) = &plan.release {
        row(
            "release",
            format!("{} (not run)", release.value),
            describe_source(&release.source),
        );
    }
    for (key, value) in &plan.labels {
        row("label", format!("{key}={value}"), String::new());
    }
    if let Some(check) = &plan.check {
        let value = if check.value { "yes" } else { "no" };
        row("check", value.to_owned(), describe_source(&check.source));
    }
    if let Some(path) = &plan.check_path {
        row(
            "check-path",
            path.value.clone(),
            describe_source(&path.source),
        );
    }
    if let Some(repo) = &plan.cache_repo {
        row(
            "cache-repo",
            repo.value.clone(),
            describe_source(&repo.source),
        );
    }
    let dirs = plan
        .files
        .entries
        .iter()
        .filter(|e| e.kind == FileKind::Dir)
        .count();
    row(
        "files",
        format!(
            "{} entries ({} directories), {}",
            plan.files.count,
            dirs,
            human_size(plan.files.total_size)
        ),
        String::new(),
    );

    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value, source) in rows {
        let _ = if source.is_empty() {
            writeln!(out, "{key:width$}  {value}")
        } else {
            writeln!(out, "{key:width$}  {value}  [{source}]")
        };
    }
    if !plan.warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for warning in &plan.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    if !plan.ignored.is_empty() {
        out.push_str("\nignored:\n");
        for ignored in &plan.ignored {
            let _ = writeln!(out, "  - {}: {}", ignored.what, ignored.reason);
        }
    }
    out
}
