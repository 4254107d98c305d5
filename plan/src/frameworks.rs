//! The frameworks pyslip recognises, as data: the dependency that signals each, how its app
//! object is built, the servers that can run it in order of preference, and its default port.

use crate::command::Extra;
use crate::model::{Framework, Server};

/// WSGI servers, in order of preference.
const WSGI: &[Server] = &[Server::Gunicorn, Server::Waitress, Server::Uwsgi];
/// ASGI servers, in order of preference.
const ASGI: &[Server] = &[Server::Uvicorn, Server::Hypercorn, Server::Daphne];

/// How the app is found and started.
#[derive(Debug)]
pub enum Kind {
    /// Django: `manage.py` and the project's WSGI/ASGI module.
    Django,
    /// An app object built by a constructor (`app = Flask(__name__)`) and imported by a server.
    App {
        /// Constructors, as the callee's last dotted parts (`FastAPI`, `falcon.App`), each with
        /// the servers that can run what it builds, in order of preference (a development
        /// server last, used with a warning).
        constructors: &'static [(&'static str, &'static [Server])],
        /// Options that go with a server for this framework.
        extra: Extra,
    },
    /// A program run as a file (`python main.py`, `streamlit run app.py`).
    Script {
        /// The server that runs the file.
        server: Server,
        /// Files tried first, before the usual app files.
        preferred: &'static [&'static str],
    },
}

/// One framework.
#[derive(Debug)]
pub struct Spec {
    /// The framework.
    pub framework: Framework,
    /// The dependency that signals it (PEP 503 name).
    pub dist: &'static str,
    /// The module name its code imports (a file must mention it to count as its app file).
    pub import: &'static str,
    /// Its default port.
    pub port: u16,
    /// How the app is found and started.
    pub kind: Kind,
}

const fn app(
    framework: Framework,
    dist: &'static str,
    port: u16,
    constructors: &'static [(&'static str, &'static [Server])],
) -> Spec {
    Spec {
        framework,
        dist,
        import: dist,
        port,
        kind: Kind::App {
            constructors,
            extra: Extra { gunicorn: "" },
        },
    }
}

/// In detection order: a framework that depends on another comes before it (FastAPI needs
/// Starlette, Quart needs Flask, Streamlit needs Tornado), so the dependency that is only
/// pulled in does not win.
pub const FRAMEWORKS: &[Spec] = &[
    Spec {
        framework: Framework::Django,
        dist: "django",
        import: "django",
        port: 8000,
        kind: Kind::Django,
    },
    app(
        Framework::Fastapi,
        "fastapi",
        8000,
        &[(
            "FastAPI",
            &[Server::Uvicorn, Server::FastapiCli, Server::Hypercorn],
        )],
    ),
    app(Framework::Litestar, "litestar", 8000, &[("Litestar", ASGI)]),
    app(
        Framework::Quart,
        "quart",
        5000,
        &[(
            "Quart",
            &[Server::Hypercorn, Server::Uvicorn, Server::Daphne],
        )],
    ),
    app(
        Framework::Sanic,
        "sanic",
        8000,
        &[("Sanic", &[Server::Sanic])],
    ),
    Spec {
        framework: Framework::Streamlit,
        dist: "streamlit",
        import: "streamlit",
        port: 8501,
        kind: Kind::Script {
            server: Server::Streamlit,
            preferred: &["streamlit_app.py", "Home.py"],
        },
    },
    app(
        Framework::Starlette,
        "starlette",
        8000,
        &[("Starlette", ASGI)],
    ),
    app(
        Framework::Flask,
        "flask",
        5000,
        &[(
            "Flask",
            &[
                Server::Gunicorn,
                Server::Waitress,
                Server::Uwsgi,
                Server::FlaskRun,
            ],
        )],
    ),
    app(
        Framework::Falcon,
        "falcon",
        8000,
        // The ASGI form first: `falcon.asgi.App` also ends in `App`.
        &[
            ("asgi.App", ASGI),
            ("falcon.App", WSGI),
            ("falcon.API", WSGI),
            ("App", WSGI),
        ],
    ),
    app(
        Framework::Bottle,
        "bottle",
        8080,
        &[
            (
                "Bottle",
                &[
                    Server::Gunicorn,
                    Server::Waitress,
                    Server::Uwsgi,
                    Server::BottleRun,
                ],
            ),
            (
                "default_app",
                &[
                    Server::Gunicorn,
                    Server::Waitress,
                    Server::Uwsgi,
                    Server::BottleRun,
                ],
            ),
        ],
    ),
    Spec {
        framework: Framework::Aiohttp,
        dist: "aiohttp",
        import: "aiohttp",
        port: 8080,
        kind: Kind::App {
            constructors: &[("web.Application", &[Server::Gunicorn, Server::Aiohttp])],
            extra: Extra {
                gunicorn: " --worker-class aiohttp.GunicornWebWorker",
            },
        },
    },
    Spec {
        framework: Framework::Tornado,
        dist: "tornado",
        import: "tornado",
        port: 8888,
        kind: Kind::Script {
            server: Server::Python,
            preferred: &[],
        },
    },
];

/// The display name of a framework, as users write it.
pub fn display(framework: Framework) -> &'static str {
    match framework {
        Framework::Django => "Django",
        Framework::Fastapi => "FastAPI",
        Framework::Flask => "Flask",
        Framework::Tornado => "Tornado",
        Framework::Starlette => "Starlette",
        Framework::Litestar => "Litestar",
        Framework::Quart => "Quart",
        Framework::Sanic => "Sanic",
        Framework::Aiohttp => "aiohttp",
        Framework::Falcon => "Falcon",
        Framework::Bottle => "Bottle",
        Framework::Streamlit => "Streamlit",
        Framework::Generic => "generic",
        Framework::None => "none",
    }
}

/// App factories: a top-level `def create_app(` is served with the server's factory syntax,
/// and `app = create_app()` is an app object.
pub const FACTORIES: &[&str] = &["create_app", "make_app"];
