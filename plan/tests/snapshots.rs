//! Snapshot tests: `plan --json` of every `testdata/apps/<app>` compared with its checked-in
//! `plan.json`. Run with `PYSLIP_UPDATE_SNAPSHOTS=1` to rewrite the snapshots after a deliberate change.

use std::path::{Path, PathBuf};

use pyslip_plan::{BuildPlan, Framework, Overrides, Server, Workload, plan};

fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/apps")
}

/// The overrides `pyslip plan` uses by default; `plan.json` itself is excluded like a build output,
/// so the snapshot does not describe itself.
fn overrides(dir: &Path) -> Overrides {
    Overrides {
        base_repo: "docker.io/library/python".to_owned(),
        exclude_outputs: vec![dir.join("plan.json")],
        ..Overrides::default()
    }
}

fn plan_of(app: &str) -> BuildPlan {
    let dir = apps_dir().join(app);
    match plan(&dir, &overrides(&dir)) {
        Ok(plan) => plan,
        Err(err) => panic!("{app}: {err} (hint: {:?})", err.hint()),
    }
}

/// Writes `path` atomically (temp file + rename).
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    fs_err::write(&tmp, text).expect("write snapshot");
    fs_err::rename(&tmp, path).expect("rename snapshot");
}

struct Expect {
    app: &'static str,
    python: &'static str,
    framework: Framework,
    server: Option<Server>,
    cmd_contains: &'static str,
    port: Option<u16>,
}

const APPS: &[Expect] = &[
    Expect {
        app: "stdlib",
        python: "3.14",
        framework: Framework::Generic,
        server: Some(Server::Python),
        cmd_contains: "main.py",
        port: Some(8000),
    },
    Expect {
        app: "flask-requirements",
        python: "3.13",
        framework: Framework::Flask,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn app:app --bind \"0.0.0.0:$PORT\"",
        port: Some(5000),
    },
    Expect {
        app: "flask-pipenv",
        python: "3.11",
        framework: Framework::Flask,
        server: Some(Server::Waitress),
        cmd_contains: "exec waitress-serve --listen \"0.0.0.0:$PORT\" wsgi:application",
        port: Some(5000),
    },
    Expect {
        app: "fastapi-poetry",
        python: "3.14",
        framework: Framework::Fastapi,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn main:app --host 0.0.0.0 --port \"$PORT\"",
        port: Some(8000),
    },
    Expect {
        app: "fastapi-uv",
        python: "3.14",
        framework: Framework::Fastapi,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn uvapp.main:api --app-dir src",
        port: Some(8000),
    },
    Expect {
        app: "fastapi-scaffold",
        python: "3.13",
        framework: Framework::Fastapi,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn app.main:app",
        port: Some(8000),
    },
    Expect {
        app: "django",
        python: "3.13",
        framework: Framework::Django,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn mysite.wsgi:application",
        port: Some(8000),
    },
    Expect {
        app: "tornado",
        python: "3.14",
        framework: Framework::Tornado,
        server: Some(Server::Python),
        cmd_contains: "main.py",
        port: Some(8888),
    },
    Expect {
        app: "generic",
        python: "3.14",
        framework: Framework::Generic,
        server: Some(Server::Python),
        cmd_contains: "app.py",
        port: Some(8000),
    },
    Expect {
        app: "bottle",
        python: "3.14",
        framework: Framework::Bottle,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn app:app --bind",
        port: Some(8080),
    },
    Expect {
        app: "starlette",
        python: "3.14",
        framework: Framework::Starlette,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn main:app --host 0.0.0.0",
        port: Some(8000),
    },
    Expect {
        app: "litestar",
        python: "3.14",
        framework: Framework::Litestar,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn app:application --host 0.0.0.0",
        port: Some(8000),
    },
    Expect {
        app: "quart",
        python: "3.14",
        framework: Framework::Quart,
        server: Some(Server::Hypercorn),
        cmd_contains: "exec hypercorn api:app --bind \"0.0.0.0:$PORT\"",
        port: Some(5000),
    },
    Expect {
        app: "sanic",
        python: "3.14",
        framework: Framework::Sanic,
        server: Some(Server::Sanic),
        cmd_contains: "exec sanic server:app --host 0.0.0.0 --port \"$PORT\"",
        port: Some(8000),
    },
    Expect {
        app: "aiohttp",
        python: "3.14",
        framework: Framework::Aiohttp,
        server: Some(Server::Aiohttp),
        cmd_contains: "import_module(\"service.app\"); web.run_app(m.app, host=\"0.0.0.0\"",
        port: Some(8080),
    },
    Expect {
        app: "falcon",
        python: "3.14",
        framework: Framework::Falcon,
        server: Some(Server::Waitress),
        cmd_contains: "exec waitress-serve --listen \"0.0.0.0:$PORT\" app:app",
        port: Some(8000),
    },
    Expect {
        app: "streamlit",
        python: "3.14",
        framework: Framework::Streamlit,
        server: Some(Server::Streamlit),
        cmd_contains: "exec streamlit run streamlit_app.py --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true",
        port: Some(8501),
    },
    Expect {
        app: "flask-factory",
        python: "3.14",
        framework: Framework::Flask,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn 'myapp:create_app()' --bind",
        port: Some(5000),
    },
    Expect {
        app: "fastapi-src-init",
        python: "3.14",
        framework: Framework::Fastapi,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn srcapp:app --app-dir src --host",
        port: Some(8000),
    },
    Expect {
        app: "uv-workspace/apps/api",
        python: "3.13",
        framework: Framework::Fastapi,
        server: Some(Server::Uvicorn),
        cmd_contains: "exec uvicorn api:app --app-dir src --host",
        port: Some(8000),
    },
    Expect {
        app: "uv-workspace/apps/web",
        python: "3.13",
        framework: Framework::Flask,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn web:app --pythonpath src --bind",
        port: Some(5000),
    },
    Expect {
        app: "numpy-pinned",
        python: "3.14",
        framework: Framework::Flask,
        server: Some(Server::Gunicorn),
        cmd_contains: "exec gunicorn app:app --bind",
        port: Some(5000),
    },
    Expect {
        app: "worker",
        python: "3.14",
        framework: Framework::None,
        server: None,
        cmd_contains: "exec python worker.py",
        port: None,
    },
];

#[test]
fn every_app_plans_as_expected() {
    for expect in APPS {
        let plan = plan_of(expect.app);
        assert_eq!(plan.python.value, expect.python, "{}: python", expect.app);
        assert_eq!(
            plan.framework.value, expect.framework,
            "{}: framework",
            expect.app
        );
        assert_eq!(
            plan.server.as_ref().map(|s| s.value),
            expect.server,
            "{}: server",
            expect.app
        );
        assert!(
            plan.cmd
                .value
                .iter()
                .any(|part| part.contains(expect.cmd_contains)),
            "{}: cmd {:?}",
            expect.app,
            plan.cmd.value
        );
        assert_eq!(
            plan.port.as_ref().map(|p| p.value),
            expect.port,
            "{}: port",
            expect.app
        );
        assert_eq!(
            plan.workload.value == Workload::Worker,
            expect.port.is_none(),
            "{}: workload",
            expect.app
        );
        assert!(
            plan.files.entries.iter().all(|e| e.path != "plan.json"),
            "{}: plan.json excluded",
            expect.app
        );
    }
}

#[test]
fn snapshots_match() {
    let update = std::env::var_os("PYSLIP_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for expect in APPS {
        let plan = plan_of(expect.app);
        let json = serde_json::to_string_pretty(&plan).expect("serialize") + "\n";
        let path = apps_dir().join(expect.app).join("plan.json");
        if update {
            write_atomic(&path, &json);
            continue;
        }
        let checked_in = fs_err::read_to_string(&path).unwrap_or_default();
        if checked_in != json {
            stale.push(format!("--- {} ---\n{json}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "snapshots differ (rerun with PYSLIP_UPDATE_SNAPSHOTS=1 if the change is intended):\n{}",
        stale.join("\n")
    );
}

#[test]
fn table_shows_each_decision_with_its_source() {
    let rendered = pyslip_plan::render_table(&plan_of("django"));
    eprintln!("{rendered}");
    // Column widths are the renderer's business; compare with runs of spaces collapsed.
    let table = rendered
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "python 3.13 [runtime.txt:1]",
        "framework django [manage.py: manage.py and the django dependency in requirements.txt]",
        "collectstatic yes: python manage.py collectstatic --noinput",
        "port 8000 [manage.py: django default port]",
        "user 1000:1000 [default]",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
}
