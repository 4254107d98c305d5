//! The simpler decisions of the plan: base image, workload, port, env and collectstatic.
//! Each follows command line > config > Procfile > detection > defaults.

use crate::config::LoadedConfig;
use crate::django::DjangoProject;
use crate::error::PlanError;
use crate::model::{Collectstatic, DEFAULT_BASE_REPO, Decision, Overrides, Source, Workload};
use crate::plan::Notes;
use crate::procfile::Procfile;
use crate::version;

pub(crate) fn choose_base(
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    python: &str,
    notes: &mut Notes,
) -> Result<Decision<String>, PlanError> {
    let from_config = config.and_then(|c| {
        c.config
            .base
            .as_ref()
            .map(|b| (b.get_ref().clone(), c.source("base")))
    });
    let decision = match (&overrides.base, from_config) {
        (Some(base), config_value) => {
            if let Some((value, _)) = config_value {
                notes.ignore(format!("base {value} (config)"), "--base wins");
            }
            Decision::new(base.clone(), Source::flag("--base"))
        }
        (None, Some((value, source))) => Decision::new(value, source),
        (None, None) => {
            let repo = if overrides.base_repo.trim().is_empty() {
                DEFAULT_BASE_REPO
            } else {
                overrides.base_repo.trim()
            };
            Decision::new(
                format!("{repo}:{python}-slim"),
                Source::Derived {
                    from: "python version and --base-repo".to_owned(),
                },
            )
        }
    };
    if decision.value.trim().is_empty() || decision.value.contains(char::is_whitespace) {
        return Err(PlanError::InvalidFlag {
            flag: "base".to_owned(),
            value: decision.value,
            reason: "expected an image reference such as python:3.13-slim".to_owned(),
        });
    }
    Ok(decision)
}

pub(crate) fn choose_workload(
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    procfile: Option<&Procfile>,
) -> Decision<Workload> {
    if let Some(workload) = overrides.workload {
        return Decision::new(workload, Source::flag("--workload"));
    }
    if let Some((value, source)) = config.and_then(|c| {
        c.config
            .workload
            .as_ref()
            .map(|w| (*w.get_ref(), c.source("workload")))
    }) {
        return Decision::new(value, source);
    }
    if let Some(p) = procfile
        && let (Some(worker), None) = (p.get("worker"), p.get("web"))
    {
        return Decision::new(Workload::Worker, Source::Procfile { line: worker.line });
    }
    Decision::new(Workload::Web, Source::Default)
}

pub(crate) fn choose_port(
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    workload: Workload,
    detected: Option<&Decision<u16>>,
    notes: &mut Notes,
) -> Result<Option<Decision<u16>>, PlanError> {
    let from_config = match config.and_then(|c| c.config.port.as_ref().map(|p| (p, c))) {
        Some((port, c)) if *port.get_ref() == 0 => {
            return Err(c.invalid(port.span(), "port", "must be 1–65535"));
        }
        Some((port, c)) => Some(Decision::new(*port.get_ref(), c.source("port"))),
        None => None,
    };
    if overrides.port == Some(0) {
        return Err(PlanError::InvalidFlag {
            flag: "--port".into(),
            value: "0".into(),
            reason: "must be 1–65535".into(),
        });
    }
    let from_flag = overrides
        .port
        .map(|p| Decision::new(p, Source::flag("--port")));
    if workload == Workload::Worker {
        for given in [from_flag, from_config].into_iter().flatten() {
            notes.ignore(
                format!(
                    "port {} ({})",
                    given.value,
                    version::describe(&given.source)
                ),
                "workers listen on no port",
            );
        }
        return Ok(None);
    }
    if let (Some(_), Some(c)) = (&from_flag, &from_config) {
        notes.ignore(
            format!("port {} ({})", c.value, version::describe(&c.source)),
            "--port wins",
        );
    }
    Ok(Some(
        from_flag
            .or(from_config)
            .or_else(|| detected.cloned())
            .unwrap_or_else(|| Decision::new(8000, Source::Default)),
    ))
}

pub(crate) fn build_env(
    overrides: &Overrides,
    config: Option<&LoadedConfig>,
    port: Option<&Decision<u16>>,
    notes: &mut Notes,
) -> Result<Vec<(String, String)>, PlanError> {
    let mut env: Vec<(String, String)> = [
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONUNBUFFERED", "1"),
        ("PYTHONFAULTHANDLER", "1"),
        ("PYTHONHASHSEED", "random"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    if let Some(port) = port {
        env.push(("PORT".to_owned(), port.value.to_string()));
    }
    let mut set = |key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    if let Some(c) = config {
        for (key, value) in c.env()? {
            set(key, value);
        }
    }
    for (key, value) in &overrides.env {
        if key.is_empty() || key.contains('=') {
            return Err(PlanError::InvalidFlag {
                flag: "--env".into(),
                value: format!("{key}={value}"),
                reason: "expected K=V with a non-empty K".into(),
            });
        }
        set(key.clone(), value.clone());
    }
    if let Some(port) = port
        && let Some((_, value)) = env.iter().find(|(k, _)| k == "PORT")
        && *value != port.value.to_string()
    {
        notes.warnings.push(format!(
            "env PORT={value} differs from the port {} that is exposed; set --port instead",
            port.value
        ));
    }
    Ok(env)
}

pub(crate) fn choose_collectstatic(
    django: &DjangoProject,
    config: Option<&LoadedConfig>,
    env: &[(String, String)],
) -> Decision<Collectstatic> {
    let mut step = Collectstatic {
        run: false,
        manage_py: django.manage_py.clone(),
        settings: django.settings.clone(),
        static_root: django.static_root.clone(),
        command: ["python", "manage.py", "collectstatic", "--noinput"]
            .map(str::to_owned)
            .to_vec(),
    };
    if let Some((value, c)) =
        config.and_then(|c| c.config.collectstatic.as_ref().map(|v| (*v.get_ref(), c)))
    {
        step.run = value;
        return Decision::new(step, c.source("collectstatic"));
    }
    if env
        .iter()
        .any(|(k, v)| k == "DISABLE_COLLECTSTATIC" && !v.is_empty() && v != "0")
    {
        return Decision::new(
            step,
            Source::Derived {
                from: "DISABLE_COLLECTSTATIC in the image env".to_owned(),
            },
        );
    }
    let settings_file = django
        .settings_file
        .clone()
        .unwrap_or_else(|| django.manage_py.clone());
    let (run, detail) = match (&django.static_root, django.staticfiles) {
        (Some(_), true) => (
            true,
            "STATIC_ROOT is set and django.contrib.staticfiles is installed",
        ),
        (None, _) => (false, "STATIC_ROOT is not set"),
        (Some(_), false) => (false, "django.contrib.staticfiles is not in the settings"),
    };
    step.run = run;
    Decision::new(step, Source::detected(&settings_file, detail))
}
