//! App discovery inside packages and the frameworks beyond Django/FastAPI/Flask/Tornado.

mod common;

use common::{defaults, ignored, plan_of, script, try_plan, warned};
use pyslip_plan::{Framework, PlanError, Server};

type Files = Vec<(&'static str, &'static str)>;

/// (name, files, framework, server, app file, variable, line, script needle)
struct Case {
    name: &'static str,
    files: Files,
    framework: Framework,
    server: Server,
    file: &'static str,
    variable: &'static str,
    line: Option<usize>,
    needle: &'static str,
}

fn check(case: &Case) {
    let plan = plan_of(&case.files, &defaults());
    assert_eq!(plan.framework.value, case.framework, "{}", case.name);
    assert_eq!(
        plan.server.as_ref().map(|s| s.value),
        Some(case.server),
        "{}",
        case.name
    );
    let app = plan
        .app
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no app", case.name));
    assert_eq!(app.file, case.file, "{}", case.name);
    assert_eq!(app.variable, case.variable, "{}", case.name);
    assert_eq!(app.line, case.line, "{}", case.name);
    let script = script(&plan);
    assert!(script.contains(case.needle), "{}: {script}", case.name);
}

#[test]
fn apps_are_found_inside_packages() {
    let cases = vec![
        Case {
            name: "src layout, app in the package's __init__.py",
            files: vec![
                ("requirements.txt", "fastapi\nuvicorn\n"),
                (
                    "src/demo/__init__.py",
                    "from fastapi import FastAPI\n\napp = FastAPI()\n",
                ),
                ("src/demo/routes.py", ""),
            ],
            framework: Framework::Fastapi,
            server: Server::Uvicorn,
            file: "src/demo/__init__.py",
            variable: "app",
            line: Some(3),
            needle: "exec uvicorn demo:app --app-dir src --host",
        },
        Case {
            name: "flat layout, api.py in a package",
            files: vec![
                ("requirements.txt", "flask\ngunicorn\n"),
                ("shop/__init__.py", ""),
                (
                    "shop/api.py",
                    "import flask\nserver = flask.Flask(__name__)\n",
                ),
            ],
            framework: Framework::Flask,
            server: Server::Gunicorn,
            file: "shop/api.py",
            variable: "server",
            line: Some(2),
            needle: "exec gunicorn shop.api:server --bind",
        },
        Case {
            name: "a factory in a package, served with the factory syntax",
            files: vec![
                ("requirements.txt", "flask\nwaitress\n"),
                (
                    "shop/__init__.py",
                    "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n    return app\n",
                ),
            ],
            framework: Framework::Flask,
            server: Server::Waitress,
            file: "shop/__init__.py",
            variable: "create_app()",
            line: Some(4),
            needle: "waitress-serve --listen \"0.0.0.0:$PORT\" --call shop:create_app",
        },
        Case {
            name: "an app made by a factory call wins over the factory's definition",
            files: vec![
                ("requirements.txt", "flask\ngunicorn\n"),
                (
                    "wsgi.py",
                    "from shop import create_app\n\napplication = create_app()\n",
                ),
                (
                    "shop/__init__.py",
                    "from flask import Flask\n\ndef create_app():\n    return Flask(__name__)\n",
                ),
            ],
            framework: Framework::Flask,
            server: Server::Gunicorn,
            file: "wsgi.py",
            variable: "application",
            line: Some(3),
            needle: "exec gunicorn wsgi:application --bind",
        },
        Case {
            name: "uvicorn takes an async factory with --factory",
            files: vec![
                ("requirements.txt", "starlette\nuvicorn\n"),
                (
                    "server.py",
                    "from starlette.applications import Starlette\n\nasync def make_app():\n    return Starlette()\n",
                ),
            ],
            framework: Framework::Starlette,
            server: Server::Uvicorn,
            file: "server.py",
            variable: "make_app()",
            line: Some(3),
            needle: "exec uvicorn server:make_app --factory --host",
        },
        Case {
            name: "falcon's ASGI app goes to an ASGI server",
            files: vec![
                ("requirements.txt", "falcon\nuvicorn\ngunicorn\n"),
                ("app.py", "import falcon.asgi\n\napp = falcon.asgi.App()\n"),
            ],
            framework: Framework::Falcon,
            server: Server::Uvicorn,
            file: "app.py",
            variable: "app",
            line: Some(3),
            needle: "exec uvicorn app:app --host",
        },
        Case {
            name: "aiohttp behind gunicorn gets its worker class",
            files: vec![
                ("requirements.txt", "aiohttp\ngunicorn\n"),
                (
                    "main.py",
                    "from aiohttp import web\n\napp = web.Application()\n",
                ),
            ],
            framework: Framework::Aiohttp,
            server: Server::Gunicorn,
            file: "main.py",
            variable: "app",
            line: Some(3),
            needle: "exec gunicorn main:app --worker-class aiohttp.GunicornWebWorker --bind",
        },
        Case {
            name: "quart brings hypercorn",
            files: vec![
                ("requirements.txt", "quart==0.20.0\n"),
                ("app.py", "from quart import Quart\napp = Quart(__name__)\n"),
            ],
            framework: Framework::Quart,
            server: Server::Hypercorn,
            file: "app.py",
            variable: "app",
            line: Some(2),
            needle: "exec hypercorn app:app --bind",
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn the_framework_whose_app_is_in_the_code_wins() {
    // aiohttp as an HTTP client of a Flask app does not take over.
    let plan = plan_of(
        &[
            ("requirements.txt", "aiohttp\nflask\ngunicorn\n"),
            (
                "app.py",
                "import aiohttp\nfrom flask import Flask\napp = Flask(__name__)\n",
            ),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Flask);
    assert!(
        ignored(&plan, "aiohttp dependency", "flask wins"),
        "{:?}",
        plan.ignored
    );
    // A Tornado app that uses aiohttp as a client: tornado's web.Application is not aiohttp's.
    let plan = plan_of(
        &[
            ("requirements.txt", "aiohttp\ntornado\n"),
            (
                "main.py",
                "import tornado.web\nimport aiohttp\napp = tornado.web.Application([])\n",
            ),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Tornado);
    // Quart depends on Flask; a Quart app stays Quart even when the lock lists flask.
    let plan = plan_of(
        &[
            ("requirements.txt", "quart\nflask\n"),
            ("app.py", "from quart import Quart\napp = Quart(__name__)\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Quart);
}

#[test]
fn development_servers_come_with_a_warning() {
    let plan = plan_of(
        &[
            ("requirements.txt", "bottle\n"),
            ("app.py", "import bottle\napp = bottle.Bottle()\n"),
        ],
        &defaults(),
    );
    assert_eq!(
        plan.server.as_ref().map(|s| s.value),
        Some(Server::BottleRun)
    );
    assert!(script(&plan).contains("exec python -m bottle --bind \"0.0.0.0:$PORT\" app:app"));
    assert!(
        warned(&plan, "add gunicorn to the dependencies"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_framework_without_a_server_is_an_error_naming_the_servers() {
    let err = try_plan(
        &[
            ("requirements.txt", "starlette\n"),
            (
                "main.py",
                "from starlette.applications import Starlette\napp = Starlette()\n",
            ),
        ],
        &defaults(),
    )
    .expect_err("no server");
    assert!(matches!(err, PlanError::NoServer { .. }), "{err}");
    assert!(
        err.to_string().contains("uvicorn, hypercorn, daphne"),
        "{err}"
    );
    // A factory cannot go to daphne, the only server installed.
    let err = try_plan(
        &[
            ("requirements.txt", "starlette\ndaphne\n"),
            ("main.py", "from starlette.applications import Starlette\ndef create_app():\n    return Starlette()\n"),
        ],
        &defaults(),
    )
    .expect_err("daphne cannot call a factory");
    assert!(matches!(err, PlanError::NoServer { .. }), "{err}");
}

#[test]
fn streamlit_runs_the_file_that_imports_it() {
    let plan = plan_of(
        &[
            ("requirements.txt", "streamlit\n"),
            ("helpers.py", "X = 1\n"),
            ("dashboard.py", "import streamlit as st\nst.write('hi')\n"),
        ],
        &defaults(),
    );
    assert_eq!(plan.framework.value, Framework::Streamlit);
    assert_eq!(plan.port.as_ref().map(|p| p.value), Some(8501));
    assert_eq!(
        script(&plan),
        "exec streamlit run dashboard.py --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true"
    );
}

#[test]
fn search_order_is_fixed_and_tests_are_not_apps() {
    // Top-level files before packages; `tests/` is never an app; packages sorted.
    let files: Files = vec![
        ("requirements.txt", "fastapi\nuvicorn\n"),
        ("tests/__init__.py", ""),
        (
            "tests/app.py",
            "from fastapi import FastAPI\napp = FastAPI()\n",
        ),
        (
            "zeta/__init__.py",
            "from fastapi import FastAPI\nz = FastAPI()\n",
        ),
        (
            "alpha/__init__.py",
            "from fastapi import FastAPI\na = FastAPI()\n",
        ),
    ];
    let plan = plan_of(&files, &defaults());
    assert_eq!(
        plan.app.as_ref().map(|a| a.file.as_str()),
        Some("alpha/__init__.py")
    );
    let mut with_main = files.clone();
    with_main.push(("main.py", "from fastapi import FastAPI\nm = FastAPI()\n"));
    let plan = plan_of(&with_main, &defaults());
    assert_eq!(plan.app.as_ref().map(|a| a.variable.as_str()), Some("m"));
}
