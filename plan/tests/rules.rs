//! Table-driven tests for every rule of detection.md and every precedence conflict.

mod common;

use common::{defaults, ignored, plan_of, script, try_plan, warned};
use pyslip_plan::{
    Framework, Installer, Overrides, PackageManager, PlanError, Server, Source, Workload,
};

/// A project's files.
type Files = Vec<(&'static str, &'static str)>;

const FLASK_APP: &str = "from flask import Flask\napp = Flask(__name__)\n";
const FASTAPI_APP: &str = "from fastapi import FastAPI\napp = FastAPI()\n";

fn with(f: impl FnOnce(&mut Overrides)) -> Overrides {
    let mut o = defaults();
    f(&mut o);
    o
}

#[test]
fn python_version_precedence() {
    // (files, overrides, expected version, expected source path or "" for non-file sources)
    let cases: Vec<(&str, Files, Overrides, &str, &str)> = vec![
        ("default", vec![("main.py", "")], defaults(), "3.14", ""),
        (
            ".python-version beats runtime.txt and Pipfile",
            vec![
                ("main.py", ""),
                (".python-version", "# pin\n3.12\n"),
                ("runtime.txt", "python-3.11\n"),
                ("Pipfile", "[requires]\npython_version = \"3.13\"\n"),
            ],
            defaults(),
            "3.12",
            ".python-version",
        ),
        (
            "runtime.txt beats Pipfile",
            vec![
                ("main.py", ""),
                ("runtime.txt", "python-3.11.9\n"),
                ("Pipfile", "[requires]\npython_version = \"3.13\"\n"),
            ],
            defaults(),
            "3.11.9",
            "runtime.txt",
        ),
        (
            "Pipfile beats requires-python",
            vec![
                ("main.py", ""),
                ("Pipfile", "[requires]\npython_full_version = \"3.12.4\"\n"),
                (
                    "pyproject.toml",
                    "[project]\nname = \"x\"\nrequires-python = \">=3.10\"\n",
                ),
            ],
            defaults(),
            "3.12.4",
            "Pipfile",
        ),
        (
            "Pipfile.lock _meta.requires",
            vec![
                ("main.py", ""),
                (
                    "Pipfile.lock",
                    "{\"_meta\": {\"requires\": {\"python_version\": \"3.10\"}}, \"default\": {}}",
                ),
            ],
            defaults(),
            "3.10",
            "Pipfile.lock",
        ),
        (
            "requires-python: newest satisfying minor",
            vec![
                ("main.py", ""),
                (
                    "pyproject.toml",
                    "[project]\nname = \"x\"\nrequires-python = \">=3.10,<3.13\"\n",
                ),
            ],
            defaults(),
            "3.12",
            "pyproject.toml",
        ),
        (
            "poetry python constraint",
            vec![
                ("main.py", ""),
                (
                    "pyproject.toml",
                    "[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies]\npython = \"~3.11\"\n",
                ),
            ],
            defaults(),
            "3.11",
            "pyproject.toml",
        ),
        (
            "--python beats every pin",
            vec![("main.py", ""), (".python-version", "3.12\n")],
            with(|o| o.python = Some("3.13".into())),
            "3.13",
            "",
        ),
        (
            "config python beats pins",
            vec![
                ("main.py", ""),
                (".python-version", "3.12\n"),
                ("pyslip.toml", "python = \"3.11\"\n"),
            ],
            defaults(),
            "3.11",
            "",
        ),
        (
            "--python beats config python",
            vec![("main.py", ""), ("pyslip.toml", "python = \"3.11\"\n")],
            with(|o| o.python = Some("3.10".into())),
            "3.10",
            "",
        ),
    ];
    for (name, files, overrides, version, path) in cases {
        let plan = plan_of(&files, &overrides);
        assert_eq!(plan.python.value, version, "{name}");
        match &plan.python.source {
            Source::File { path: p, .. } | Source::Detected { file: p, .. } => {
                assert_eq!(p, path, "{name}")
            }
            other => assert_eq!(path, "", "{name}: source {other:?}"),
        }
    }
}

#[test]
fn lower_pins_are_reported_as_ignored() {
    let plan = plan_of(
        &[
            ("main.py", ""),
            (".python-version", "3.12\n"),
            ("runtime.txt", "python-3.11\n"),
            ("Pipfile", "[requires]\npython_version = \"3.13\"\n"),
        ],
        &defaults(),
    );
    assert!(
        ignored(&plan, "runtime.txt", ".python-version"),
        "{:?}",
        plan.ignored
    );
    assert!(
        ignored(&plan, "Pipfile", ".python-version"),
        "{:?}",
        plan.ignored
    );
}

#[test]
fn explicit_python_contradicting_a_pin_warns() {
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("runtime.txt", "python-3.11\n"),
            ("Pipfile", "[requires]\npython_version = \"3.11\"\n"),
        ],
        &with(|o| o.python = Some("3.13".into())),
    );
    assert_eq!(plan.python.source, Source::flag("--python"));
    assert!(warned(&plan, "runtime.txt"), "{:?}", plan.warnings);
    assert!(warned(&plan, "Pipfile"), "{:?}", plan.warnings);
    let agreeing = plan_of(
        &[("main.py", ""), ("runtime.txt", "python-3.11.4\n")],
        &with(|o| o.python = Some("3.11".into())),
    );
    assert!(agreeing.warnings.is_empty(), "{:?}", agreeing.warnings);
    let spec = plan_of(
        &[
            ("main.py", ""),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\nrequires-python = \">=3.12\"\n",
            ),
        ],
        &with(|o| o.python = Some("3.11".into())),
    );
    assert!(warned(&spec, "requires-python"), "{:?}", spec.warnings);
}

#[test]
fn unsupported_and_malformed_versions_fail() {
    for (files, overrides) in [
        (
            vec![("main.py", ""), (".python-version", "3.8\n")],
            defaults(),
        ),
        (
            vec![("main.py", ""), ("runtime.txt", "python-2.7.18\n")],
            defaults(),
        ),
        (
            vec![("main.py", "")],
            with(|o| o.python = Some("3.15".into())),
        ),
        (
            vec![("main.py", "")],
            with(|o| o.python = Some("banana".into())),
        ),
        (
            vec![
                ("main.py", ""),
                (
                    "pyproject.toml",
                    "[project]\nname = \"x\"\nrequires-python = \"<3.9\"\n",
                ),
            ],
            defaults(),
        ),
    ] {
        let err = try_plan(&files, &overrides).expect_err("unsupported");
        assert!(matches!(err, PlanError::UnsupportedPython { .. }), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("3.9–3.14")), "{err}");
    }
}

#[test]
fn base_image_precedence() {
    let plan = plan_of(
        &[("main.py", ""), (".python-version", "3.11.4\n")],
        &defaults(),
    );
    assert_eq!(plan.base.value, "docker.io/library/python:3.11.4-slim");
    let plan = plan_of(
        &[("main.py", "")],
        &with(|o| o.base_repo = "127.0.0.1:5000/library/python".into()),
    );
    assert_eq!(plan.base.value, "127.0.0.1:5000/library/python:3.14-slim");
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("pyslip.toml", "base = \"example.org/py:custom\"\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.base.value, "example.org/py:custom");
    assert!(matches!(plan.base.source, Source::Config { .. }));
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("pyslip.toml", "base = \"example.org/py:custom\"\n"),
        ],
        &with(|o| o.base = Some("example.org/py:flag".into())),
    );
    assert_eq!(plan.base.value, "example.org/py:flag");
    assert!(ignored(&plan, "example.org/py:custom", "--base"));
}

#[test]
fn package_manager_precedence() {
    let pyproject_deps =
        "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n";
    let cases: Vec<(&str, Files, PackageManager, &str)> = vec![
        (
            "requirements.txt + pyproject",
            vec![
                ("main.py", FLASK_APP),
                ("requirements.txt", "flask\n"),
                ("pyproject.toml", pyproject_deps),
            ],
            PackageManager::Requirements,
            "pyproject.toml [project] dependencies",
        ),
        (
            "Pipfile.lock over uv.lock",
            vec![
                ("main.py", ""),
                ("Pipfile", "[packages]\nflask = \"*\"\n"),
                (
                    "Pipfile.lock",
                    "{\"_meta\": {}, \"default\": {\"flask\": {}}}",
                ),
                ("uv.lock", "version = 1\n"),
                ("pyproject.toml", pyproject_deps),
            ],
            PackageManager::Pipenv { locked: true },
            "uv.lock",
        ),
        (
            "uv.lock over poetry",
            vec![
                ("main.py", ""),
                ("uv.lock", "version = 1\n"),
                ("poetry.lock", ""),
                ("pyproject.toml", pyproject_deps),
            ],
            PackageManager::UvLock,
            "poetry.lock",
        ),
        (
            "poetry over PEP 621",
            vec![
                ("main.py", FASTAPI_APP),
                (
                    "pyproject.toml",
                    "[project]\nname = \"x\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n[tool.poetry]\npackage-mode = false\n",
                ),
            ],
            PackageManager::Poetry { locked: false },
            "pyproject.toml [project] dependencies",
        ),
        (
            "PEP 621 over setup.py",
            vec![
                ("main.py", FASTAPI_APP),
                ("pyproject.toml", pyproject_deps),
                ("setup.py", ""),
            ],
            PackageManager::Pep621,
            "setup.py",
        ),
        (
            "setup.cfg alone",
            vec![
                ("main.py", ""),
                ("setup.cfg", "[options]\ninstall_requires =\n    bottle\n"),
            ],
            PackageManager::SetupPy,
            "",
        ),
        (
            "Pipfile alone",
            vec![("main.py", ""), ("Pipfile", "[packages]\nbottle = \"*\"\n")],
            PackageManager::Pipenv { locked: false },
            "",
        ),
    ];
    for (name, files, manager, loser) in cases {
        let plan = plan_of(&files, &defaults());
        let install = plan
            .install
            .clone()
            .unwrap_or_else(|| panic!("{name}: no install"));
        assert_eq!(install.manager, manager, "{name}");
        if !loser.is_empty() {
            assert!(ignored(&plan, loser, "wins"), "{name}: {:?}", plan.ignored);
        }
    }
    let none = plan_of(&[("main.py", "")], &defaults());
    assert!(none.install.is_none());
}

#[test]
fn requirements_follow_includes_constraints_and_markers() {
    let plan = plan_of(
        &[
            ("main.py", FLASK_APP),
            (
                "requirements.txt",
                "--index-url https://pypi.org/simple\n-r reqs/base.txt\n-c constraints.txt\nFlask_Cors==4.0 \\\n    --hash=sha256:abc\nwaitress; sys_platform == 'win32'\ngit+https://example.invalid/x.git#egg=My_Lib\n",
            ),
            ("reqs/base.txt", "# base\nflask>=3\n-r ../common.txt\n"),
            ("common.txt", "gunicorn\n"),
            ("constraints.txt", "uwsgi==2.0\n"),
        ],
        &defaults(),
    );
    let install = plan.install.expect("install");
    assert_eq!(
        install.inputs,
        vec![
            "common.txt",
            "constraints.txt",
            "reqs/base.txt",
            "requirements.txt"
        ]
    );
    assert_eq!(
        install.dependencies,
        vec!["flask", "flask-cors", "gunicorn", "my-lib"]
    );
    assert_eq!(plan.server.map(|s| s.value), Some(Server::Gunicorn));
}

#[test]
fn dependency_names_match_exactly_after_normalisation() {
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("requirements.txt", "flask-cors\nfastapi-users\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Generic);
    let plan = plan_of(
        &[
            ("main.py", FLASK_APP),
            ("requirements.txt", "FLASK\nGunicorn\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Flask);
}

#[test]
fn installer_precedence() {
    let files = [
        ("main.py", ""),
        ("requirements.txt", "bottle\n"),
        ("pyslip.toml", "installer = \"pip\"\n"),
    ];
    let plan = plan_of(&files, &defaults());
    assert_eq!(
        plan.install.as_ref().map(|i| i.installer),
        Some(Installer::Pip)
    );
    let plan = plan_of(&files, &with(|o| o.installer = Some(Installer::Uv)));
    let install = plan.install.expect("install");
    assert_eq!(
        (install.installer, install.installer_source),
        (Installer::Uv, Source::flag("--installer"))
    );
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("uv.lock", "version = 1\n"),
            ("pyproject.toml", "[project]\nname = \"x\"\n"),
        ],
        &with(|o| o.installer = Some(Installer::Pip)),
    );
    assert_eq!(
        plan.install.as_ref().map(|i| i.installer),
        Some(Installer::Uv)
    );
    assert!(warned(&plan, "uv.lock"));
}

#[test]
fn frameworks_and_servers() {
    let cases: Vec<(&str, Files, Framework, Server, &str, u16)> = vec![
        (
            "flask gunicorn",
            vec![
                ("app.py", FLASK_APP),
                ("requirements.txt", "flask\ngunicorn\n"),
            ],
            Framework::Flask,
            Server::Gunicorn,
            "gunicorn app:app",
            5000,
        ),
        (
            "flask waitress",
            vec![
                ("app.py", FLASK_APP),
                ("requirements.txt", "flask\nwaitress\n"),
            ],
            Framework::Flask,
            Server::Waitress,
            "waitress-serve --listen \"0.0.0.0:$PORT\" app:app",
            5000,
        ),
        (
            "flask uwsgi",
            vec![
                ("app.py", FLASK_APP),
                ("requirements.txt", "flask\nuwsgi\n"),
            ],
            Framework::Flask,
            Server::Uwsgi,
            "--module app:app",
            5000,
        ),
        (
            "flask dev server",
            vec![("app.py", FLASK_APP), ("requirements.txt", "flask\n")],
            Framework::Flask,
            Server::FlaskRun,
            "flask --app app:app run --host 0.0.0.0 --port \"$PORT\"",
            5000,
        ),
        (
            "flask factory",
            vec![
                ("app.py", "def create_app():\n    pass\n"),
                ("requirements.txt", "flask\ngunicorn\n"),
            ],
            Framework::Flask,
            Server::Gunicorn,
            "gunicorn 'app:create_app()'",
            5000,
        ),
        (
            "flask variable",
            vec![
                ("main.py", "x = 1\n"),
                ("app.py", "import flask\nserver = flask.Flask(__name__)\n"),
                ("requirements.txt", "flask\ngunicorn\n"),
            ],
            Framework::Flask,
            Server::Gunicorn,
            "gunicorn app:server",
            5000,
        ),
        (
            "fastapi uvicorn",
            vec![
                ("main.py", FASTAPI_APP),
                ("requirements.txt", "fastapi\nuvicorn\n"),
            ],
            Framework::Fastapi,
            Server::Uvicorn,
            "uvicorn main:app --host 0.0.0.0 --port \"$PORT\"",
            8000,
        ),
        (
            "fastapi cli",
            vec![
                ("app/main.py", FASTAPI_APP),
                ("requirements.txt", "fastapi\nfastapi-cli\n"),
            ],
            Framework::Fastapi,
            Server::FastapiCli,
            "fastapi run app/main.py --app app",
            8000,
        ),
        (
            "fastapi hypercorn",
            vec![
                ("main.py", FASTAPI_APP),
                ("requirements.txt", "fastapi\nhypercorn\n"),
            ],
            Framework::Fastapi,
            Server::Hypercorn,
            "hypercorn main:app --bind \"0.0.0.0:$PORT\"",
            8000,
        ),
        (
            "fastapi[standard]",
            vec![
                ("main.py", FASTAPI_APP),
                ("requirements.txt", "fastapi[standard]\n"),
            ],
            Framework::Fastapi,
            Server::Uvicorn,
            "uvicorn main:app",
            8000,
        ),
        (
            "fastapi src layout",
            vec![
                ("src/pkg/main.py", FASTAPI_APP),
                ("requirements.txt", "fastapi\nuvicorn\n"),
            ],
            Framework::Fastapi,
            Server::Uvicorn,
            "uvicorn pkg.main:app --app-dir src",
            8000,
        ),
        (
            "fastapi beats flask",
            vec![
                ("main.py", FASTAPI_APP),
                ("requirements.txt", "flask\nfastapi\nuvicorn\n"),
            ],
            Framework::Fastapi,
            Server::Uvicorn,
            "uvicorn main:app",
            8000,
        ),
        (
            "tornado",
            vec![
                ("app.py", "import tornado\n"),
                ("requirements.txt", "tornado\n"),
            ],
            Framework::Tornado,
            Server::Python,
            "python app.py",
            8888,
        ),
        (
            "generic application.py",
            vec![("application.py", "")],
            Framework::Generic,
            Server::Python,
            "python application.py",
            8000,
        ),
    ];
    for (name, files, framework, server, cmd, port) in cases {
        let plan = plan_of(&files, &defaults());
        assert_eq!(plan.framework.value, framework, "{name}");
        assert_eq!(
            plan.server.as_ref().map(|s| s.value),
            Some(server),
            "{name}"
        );
        assert!(script(&plan).contains(cmd), "{name}: {}", script(&plan));
        assert_eq!(plan.port.as_ref().map(|p| p.value), Some(port), "{name}");
        if server != Server::Python {
            assert!(
                script(&plan).contains("exec "),
                "{name}: signals reach the server"
            );
        }
    }
    let flask = plan_of(
        &[("app.py", FLASK_APP), ("requirements.txt", "flask\n")],
        &defaults(),
    );
    assert!(warned(&flask, "development server"));
}

#[test]
fn fastapi_without_a_server_is_an_error_unless_cmd_is_given() {
    let files = [("main.py", FASTAPI_APP), ("requirements.txt", "fastapi\n")];
    let err = try_plan(&files, &defaults()).expect_err("no server");
    assert!(matches!(err, PlanError::NoServer { .. }), "{err}");
    assert!(err.hint().is_some_and(|h| h.contains("uvicorn")));
    let plan = plan_of(&files, &with(|o| o.cmd = Some("python main.py".into())));
    assert_eq!(plan.cmd.value, vec!["/bin/sh", "-c", "exec python main.py"]);
}

const SETTINGS: &str = "INSTALLED_APPS = ['django.contrib.staticfiles']\nWSGI_APPLICATION = 'site1.wsgi.application'\nSTATIC_ROOT = BASE_DIR / 'static'\n";
const MANAGE: &str =
    "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\n";

#[test]
fn django_servers_module_and_collectstatic() {
    let base = |reqs: &'static str| {
        vec![
            ("manage.py", MANAGE),
            ("site1/settings.py", SETTINGS),
            ("site1/wsgi.py", ""),
            ("site1/asgi.py", ""),
            ("requirements.txt", reqs),
        ]
    };
    let plan = plan_of(&base("django\ngunicorn\nuvicorn\n"), &defaults());
    assert_eq!(plan.framework.value, Framework::Django);
    assert!(
        script(&plan).contains("exec gunicorn site1.wsgi:application"),
        "{}",
        script(&plan)
    );
    let step = plan.collectstatic.expect("collectstatic");
    assert!(step.value.run);
    assert_eq!(
        step.value.command,
        vec!["python", "manage.py", "collectstatic", "--noinput"]
    );
    let plan = plan_of(&base("django\nuvicorn\n"), &defaults());
    assert!(
        script(&plan).contains("exec uvicorn site1.asgi:application"),
        "{}",
        script(&plan)
    );
    let plan = plan_of(&base("django\ndaphne\n"), &defaults());
    assert!(
        script(&plan).contains("exec daphne -b 0.0.0.0 -p \"$PORT\" site1.asgi:application"),
        "{}",
        script(&plan)
    );
    let plan = plan_of(&base("django\n"), &defaults());
    assert_eq!(
        plan.server.as_ref().map(|s| s.value),
        Some(Server::DjangoRunserver)
    );
    assert!(script(&plan).contains("python manage.py runserver \"0.0.0.0:$PORT\""));
    assert!(warned(&plan, "development server"));

    // manage.py one level down: the server runs from there; project module from the wsgi.py folder.
    let plan = plan_of(
        &[
            ("web/manage.py", MANAGE),
            ("web/site1/settings.py", "STATIC_URL = 'static/'\n"),
            ("web/site1/wsgi.py", ""),
            ("requirements.txt", "django\ngunicorn\n"),
        ],
        &defaults(),
    );
    assert!(
        script(&plan).contains("cd web && exec gunicorn site1.wsgi:application"),
        "{}",
        script(&plan)
    );
    assert_eq!(
        plan.collectstatic.map(|c| c.value.run),
        Some(false),
        "no STATIC_ROOT"
    );

    let mut files = base("django\ngunicorn\n");
    files.push(("pyslip.toml", "collectstatic = false\n"));
    assert_eq!(
        plan_of(&files, &defaults())
            .collectstatic
            .map(|c| c.value.run),
        Some(false)
    );
    let plan = plan_of(
        &base("django\ngunicorn\n"),
        &with(|o| o.env = vec![("DISABLE_COLLECTSTATIC".into(), "1".into())]),
    );
    assert_eq!(plan.collectstatic.map(|c| c.value.run), Some(false));

    // django without manage.py is not a Django app.
    let plan = plan_of(
        &[("main.py", ""), ("requirements.txt", "django\n")],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Generic);
    assert!(warned(&plan, "manage.py"));
}

#[test]
fn procfile_and_workload_precedence() {
    let web = [
        ("app.py", FLASK_APP),
        ("requirements.txt", "flask\ngunicorn\n"),
        (
            "Procfile",
            "web: gunicorn app:app --bind 0.0.0.0:$PORT\nrelease: python migrate.py\n",
        ),
    ];
    let plan = plan_of(&web, &defaults());
    assert_eq!(
        plan.cmd.value,
        vec![
            "/bin/sh",
            "-c",
            "exec gunicorn app:app --bind 0.0.0.0:$PORT"
        ]
    );
    assert_eq!(plan.cmd.source, Source::Procfile { line: 1 });
    assert!(
        ignored(&plan, "detected start command", "Procfile:1"),
        "{:?}",
        plan.ignored
    );
    assert_eq!(
        plan.release.map(|r| r.value),
        Some("python migrate.py".to_owned())
    );
    assert!(plan.server.is_none());

    let plan = plan_of(
        &web,
        &with(|o| o.cmd = Some("waitress-serve app:app".into())),
    );
    assert_eq!(plan.cmd.source, Source::flag("--cmd"));
    assert!(ignored(&plan, "Procfile web:", "--cmd"));

    let mut config_cmd = web.to_vec();
    config_cmd.push(("pyslip.toml", "cmd = [\"python\", \"-m\", \"app\"]\n"));
    let plan = plan_of(&config_cmd, &defaults());
    assert_eq!(
        plan.cmd.value,
        vec!["python", "-m", "app"],
        "a list is exec form, verbatim"
    );
    assert!(ignored(&plan, "Procfile web:", "pyslip.toml"));
    let plan = plan_of(&config_cmd, &with(|o| o.cmd = Some("x".into())));
    assert_eq!(plan.cmd.source, Source::flag("--cmd"));
    assert!(ignored(&plan, "cmd (pyslip.toml", "--cmd"));

    let worker = [
        ("main.py", ""),
        ("tasks.py", ""),
        ("Procfile", "worker: python tasks.py\n"),
    ];
    let plan = plan_of(&worker, &defaults());
    assert_eq!(plan.workload.value, Workload::Worker);
    assert_eq!(plan.workload.source, Source::Procfile { line: 1 });
    assert!(plan.port.is_none());
    assert!(plan.env.iter().all(|(k, _)| k != "PORT"));
    assert_eq!(
        plan.cmd.value,
        vec!["/bin/sh", "-c", "exec python tasks.py"]
    );

    let plan = plan_of(&worker, &with(|o| o.workload = Some(Workload::Web)));
    assert_eq!(plan.workload.value, Workload::Web);
    assert_eq!(plan.cmd.value, vec!["python", "main.py"]);

    let plan = plan_of(
        &[("main.py", ""), ("worker.py", "")],
        &with(|o| o.workload = Some(Workload::Worker)),
    );
    assert_eq!(plan.cmd.value, vec!["python", "worker.py"]);
    assert!(plan.port.is_none());

    let plan = plan_of(
        &[("main.py", ""), ("pyslip.toml", "workload = \"worker\"\n")],
        &defaults(),
    );
    assert_eq!(plan.workload.value, Workload::Worker);
    assert!(matches!(plan.workload.source, Source::Config { .. }));
}

#[test]
fn compound_commands_keep_their_meaning() {
    let plan = plan_of(
        &[("Procfile", "web: cd src && gunicorn app:app\n")],
        &defaults(),
    );
    assert_eq!(
        plan.cmd.value,
        vec!["/bin/sh", "-c", "cd src && gunicorn app:app"]
    );
    assert!(warned(&plan, "signals"));
}

#[test]
fn port_env_user_and_labels() {
    let files = [
        ("main.py", ""),
        (
            "pyproject.toml",
            "[tool.pyslip]\nport = 9000\nuser = \"app\"\nenv = { B = \"2\", A = \"1\", PYTHONHASHSEED = \"0\" }\nlabels = { \"org.example.team\" = \"web\" }\n",
        ),
    ];
    let plan = plan_of(&files, &defaults());
    assert_eq!(plan.port.as_ref().map(|p| p.value), Some(9000));
    assert_eq!(plan.user.value, "app");
    let keys: Vec<&str> = plan.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONUNBUFFERED",
            "PYTHONFAULTHANDLER",
            "PORT",
            "B",
            "A",
            "PYTHONHASHSEED"
        ]
    );
    assert_eq!(
        plan.labels.get("org.example.team").map(String::as_str),
        Some("web")
    );

    let plan = plan_of(
        &files,
        &with(|o| {
            o.port = Some(7000);
            o.user = Some("root".into());
            o.env = vec![("A".into(), "flag".into())];
        }),
    );
    assert_eq!(
        plan.port.as_ref().map(|p| (p.value, p.source.clone())),
        Some((7000, Source::flag("--port")))
    );
    assert!(ignored(&plan, "port 9000", "--port"));
    assert_eq!(plan.user.value, "root");
    assert_eq!(
        plan.env.last(),
        Some(&("A".to_owned(), "flag".to_owned())),
        "--env comes last and wins"
    );
    assert!(plan.env.contains(&("PORT".to_owned(), "7000".to_owned())));

    let plan = plan_of(&[("main.py", "")], &defaults());
    assert_eq!(
        (plan.user.value.as_str(), plan.workdir.as_str()),
        ("1000:1000", "/app")
    );
    assert_eq!(
        plan.port.map(|p| (p.value, p.source)),
        Some((8000, Source::detected("main.py", "generic default port")))
    );
}

#[test]
fn nothing_detectable_explains_how_to_set_cmd() {
    let err =
        try_plan(&[("README.md", "hi"), ("lib/util.py", "")], &defaults()).expect_err("nothing");
    assert!(matches!(err, PlanError::NothingDetected { .. }), "{err}");
    let hint = err.hint().unwrap_or_default();
    for needle in ["main.py", "Procfile", "--cmd", "cmd = "] {
        assert!(hint.contains(needle), "{hint}");
    }
    let plan = plan_of(
        &[("README.md", "hi")],
        &with(|o| o.cmd = Some("python -m http.server $PORT".into())),
    );
    assert_eq!(plan.framework.value, Framework::None);
}

#[test]
fn config_files_and_unknown_keys() {
    let err = try_plan(
        &[
            ("main.py", ""),
            (
                "pyproject.toml",
                "[tool.pyslip]\nport = 1\nentrypoint = \"x\"\n",
            ),
        ],
        &defaults(),
    )
    .expect_err("unknown key");
    let text = err.to_string();
    assert!(
        text.starts_with("pyproject.toml:3:") && text.contains("entrypoint"),
        "{text}"
    );
    assert!(err.hint().is_some_and(|h| h.contains(
        "python, base, installer, cmd, port, env, workload, user, exclude, collectstatic, labels"
    )));
    let plan = plan_of(
        &[
            ("main.py", ""),
            ("pyproject.toml", "[tool.pyslip]\nport = 1111\n"),
            ("pyslip.toml", "port = 2222\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.port.as_ref().map(|p| p.value), Some(2222));
    assert!(ignored(&plan, "[tool.pyslip]", "pyslip.toml"));
}

#[test]
fn boot_check_config_keys_carry_their_source() {
    let plan = plan_of(
        &[
            ("main.py", ""),
            (
                "pyproject.toml",
                "[tool.pyslip]\ncheck = true\ncheck-path = \"/healthz\"\n",
            ),
        ],
        &defaults(),
    );
    let check = plan.check.as_ref().expect("check");
    assert!(check.value);
    assert_eq!(
        check.source,
        Source::Config {
            file: "pyproject.toml".into(),
            key: "tool.pyslip.check".into()
        }
    );
    assert_eq!(
        plan.check_path.as_ref().map(|p| p.value.as_str()),
        Some("/healthz")
    );
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(json["check"]["value"], true);
    // Unset keys stay out of the plan JSON.
    let plain = plan_of(&[("main.py", "")], &defaults());
    assert!(
        serde_json::to_value(&plain)
            .expect("json")
            .get("check")
            .is_none()
    );

    let err = try_plan(
        &[
            ("main.py", ""),
            ("pyslip.toml", "\ncheck-path = \"healthz\"\n"),
        ],
        &defaults(),
    )
    .expect_err("relative path");
    assert!(
        err.to_string().starts_with("pyslip.toml:2:") && err.to_string().contains("check-path"),
        "{err}"
    );
}

#[test]
fn sandbox_config_key_is_checked_and_carries_its_source() {
    let plan = plan_of(
        &[("main.py", ""), ("pyslip.toml", "sandbox = \"none\"\n")],
        &defaults(),
    );
    let sandbox = plan.sandbox.as_ref().expect("sandbox");
    assert_eq!(sandbox.value, "none");
    assert_eq!(
        sandbox.source,
        Source::Config {
            file: "pyslip.toml".into(),
            key: "sandbox".into()
        }
    );
    let err = try_plan(
        &[("main.py", ""), ("pyslip.toml", "\nsandbox = \"chroot\"\n")],
        &defaults(),
    )
    .expect_err("unknown mode");
    assert!(
        err.to_string().starts_with("pyslip.toml:2:")
            && err.to_string().contains("sandbox")
            && err.to_string().contains("auto, namespaces or none"),
        "{err}"
    );
}
