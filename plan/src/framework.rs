//! Framework detection from the installed set, and the server and start command it implies.
//!
//! The frameworks among the dependencies are tried in [`FRAMEWORKS`] order; the first whose app
//! is found in the code wins (a dependency pulled in only as a library, say aiohttp as an HTTP
//! client of a Flask app, does not take over). When none is found in the code the first
//! framework of the order is reported with a warning.

use std::collections::BTreeSet;

use crate::app::{self, Sources};
use crate::command::{self, Extra};
use crate::django::{self, DjangoProject};
use crate::error::PlanError;
use crate::frameworks::{FRAMEWORKS, Kind, Spec, display};
use crate::model::{AppTarget, Decision, Framework, Ignored, Server, Source};
use crate::project::Project;

/// What detection found.
#[derive(Debug)]
pub struct Detected {
    /// The framework and why.
    pub framework: Decision<Framework>,
    /// The app the server imports.
    pub app: Option<AppTarget>,
    /// The server and why.
    pub server: Option<Decision<Server>>,
    /// The start command, when one could be built.
    pub cmd: Option<Vec<String>>,
    /// The file the start command runs, when it is not the app's (a script).
    pub cmd_file: Option<String>,
    /// The framework's default port.
    pub port: u16,
    /// Django details.
    pub django: Option<DjangoProject>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Frameworks seen and not used.
    pub ignored: Vec<Ignored>,
    /// The framework needs a server that is not installed (an error unless a command is given).
    pub missing_server: Option<PlanError>,
}

impl Detected {
    fn new(spec: &Spec, deps_file: &str) -> Self {
        Detected {
            framework: Decision::new(
                spec.framework,
                Source::detected(deps_file, format!("{} dependency", spec.dist)),
            ),
            app: None,
            server: None,
            cmd: None,
            cmd_file: None,
            port: spec.port,
            django: None,
            warnings: Vec::new(),
            ignored: Vec::new(),
            missing_server: None,
        }
    }
}

/// What detection looks for (for the "nothing detected" error).
pub fn looked_for() -> Vec<String> {
    let names: Vec<&str> = FRAMEWORKS.iter().map(|s| s.dist).collect();
    vec![
        "a Procfile `web:` line".to_owned(),
        format!("one of {} among the dependencies (django with manage.py)", names.join(", ")),
        "an app file (main.py, app.py, application.py, api.py, server.py, wsgi.py, asgi.py, or __init__.py, app.py, main.py, api.py, server.py in a package or src/<package>)".to_owned(),
    ]
}

/// The detection context: the project's sources, the installed set and the file that decided it.
struct Ctx<'a> {
    sources: Sources<'a>,
    deps: &'a BTreeSet<String>,
    deps_file: &'a str,
}

impl Ctx<'_> {
    /// The first of `order` that is installed and can serve `app`.
    fn server(&self, order: &[Server], app: &AppTarget) -> Option<Decision<Server>> {
        order
            .iter()
            .filter(|s| command::can_serve(**s, app))
            .find_map(|s| {
                let dist = command::line_of(*s)?.dist;
                self.deps.contains(dist).then(|| {
                    Decision::new(
                        *s,
                        Source::detected(self.deps_file, format!("{dist} is installed")),
                    )
                })
            })
    }
}

/// Detects the framework. `deps` are the names that will be installed, decided by `deps_file`.
pub fn detect(
    project: &Project,
    deps: &BTreeSet<String>,
    deps_file: &str,
) -> Result<Option<Detected>, PlanError> {
    let ctx = Ctx {
        sources: Sources::new(project),
        deps,
        deps_file,
    };
    let mut warnings = Vec::new();
    let manage_py = django::find_manage_py(project)?;
    let present: Vec<&Spec> = FRAMEWORKS
        .iter()
        .filter(|s| deps.contains(s.dist))
        .filter(|s| {
            let django_without_manage = s.framework == Framework::Django && manage_py.is_none();
            if django_without_manage {
                warnings.push("django is a dependency but there is no manage.py (root or one level down); not treated as a Django app".to_owned());
            }
            !django_without_manage
        })
        .collect();
    let Some(&first) = present.first() else {
        return Ok(generic(project, warnings));
    };
    let mut chosen = None;
    for spec in &present {
        if let Some(found) = detect_one(&ctx, spec, manage_py.as_deref())? {
            chosen = Some((*spec, found));
            break;
        }
    }
    let (spec, mut detected) = match chosen {
        Some(found) => found,
        None => (first, fallback(&ctx, first)?),
    };
    detected.warnings.splice(0..0, warnings);
    detected.ignored = present
        .iter()
        .filter(|s| s.framework != spec.framework)
        .map(|other| Ignored {
            what: format!("{} dependency", other.dist),
            reason: format!("{} wins", spec.dist),
        })
        .collect();
    Ok(Some(detected))
}

/// No framework among the dependencies: a plain `main.py`/`app.py`/`application.py`.
fn generic(project: &Project, warnings: Vec<String>) -> Option<Detected> {
    let file = app::first_existing(project, app::GENERIC_FILES)?;
    Some(Detected {
        framework: Decision::new(
            Framework::Generic,
            Source::detected(&file, "app file, no web framework among the dependencies"),
        ),
        app: None,
        server: Some(Decision::new(Server::Python, Source::Default)),
        cmd: Some(command::python_file(&file)),
        cmd_file: Some(file.clone()),
        port: 8000,
        django: None,
        warnings,
        ignored: Vec::new(),
        missing_server: None,
    })
}

/// The framework `spec` when its app is found in the code.
fn detect_one(
    ctx: &Ctx<'_>,
    spec: &Spec,
    manage_py: Option<&str>,
) -> Result<Option<Detected>, PlanError> {
    match &spec.kind {
        Kind::Django => match manage_py {
            Some(manage_py) => detect_django(ctx, spec, manage_py).map(Some),
            None => Ok(None),
        },
        Kind::App {
            constructors,
            extra,
        } => detect_app(ctx, spec, constructors, *extra),
        Kind::Script { server, preferred } => detect_script(ctx, spec, *server, preferred),
    }
}

/// The first framework when none of them was found in the code: an app-object framework is
/// assumed to be `app` in the first app file (with a warning), else nothing is started.
fn fallback(ctx: &Ctx<'_>, spec: &Spec) -> Result<Detected, PlanError> {
    let first_file = ctx.sources.candidates()?.into_iter().next();
    if let (
        Kind::App {
            constructors,
            extra,
        },
        Some(file),
    ) = (&spec.kind, first_file)
    {
        let order = constructors.last().map_or(&[][..], |(_, s)| *s);
        let target = app::target(&file, "app".to_owned(), None);
        let mut detected = serve(ctx, spec, target, order, *extra);
        detected.warnings.insert(
            0,
            format!(
                "{} is a dependency but no app object was found in the app files; assuming `app` in {file}",
                spec.dist
            ),
        );
        return Ok(detected);
    }
    let mut detected = Detected::new(spec, ctx.deps_file);
    detected.warnings.push(format!(
        "{} is a dependency but no app file was found",
        spec.dist
    ));
    Ok(detected)
}

/// An app-object framework: the app found in the code, served by the first installed server.
fn detect_app(
    ctx: &Ctx<'_>,
    spec: &Spec,
    constructors: &[(&str, &'static [Server])],
    extra: Extra,
) -> Result<Option<Detected>, PlanError> {
    let Some((target, order)) = ctx.sources.find_app(spec.import, constructors)? else {
        return Ok(None);
    };
    Ok(Some(serve(ctx, spec, target, order, extra)))
}

/// `target` served by the first installed server of `order`.
fn serve(
    ctx: &Ctx<'_>,
    spec: &Spec,
    target: AppTarget,
    order: &[Server],
    extra: Extra,
) -> Detected {
    let mut detected = Detected::new(spec, ctx.deps_file);
    let Some(server) = ctx.server(order, &target) else {
        detected.missing_server = Some(PlanError::NoServer {
            framework: display(spec.framework).to_owned(),
            servers: order
                .iter()
                .filter_map(|s| command::line_of(*s))
                .map(|l| l.dist.to_owned())
                .collect(),
        });
        detected.app = Some(target);
        return detected;
    };
    if let Some(line) = command::line_of(server.value).filter(|l| l.dev) {
        detected
            .warnings
            .push(dev_server_warning(spec.framework, order, line.label));
    }
    detected.cmd = Some(command::for_app(server.value, &target, extra, false));
    detected.server = Some(server);
    detected.app = Some(target);
    detected
}

/// "no production server (gunicorn, waitress, uwsgi) is installed; running …".
fn dev_server_warning(framework: Framework, order: &[Server], label: &str) -> String {
    let production: Vec<&str> = order
        .iter()
        .filter_map(|s| command::line_of(*s))
        .filter(|l| !l.dev)
        .map(|l| l.dist)
        .collect();
    format!(
        "no production server ({}) is installed for this {} app; running {label} — add {} to the dependencies",
        production.join(", "),
        display(framework),
        production.first().copied().unwrap_or("gunicorn")
    )
}

/// A framework run as a program file: the first file that imports it (Tornado falls back to
/// the first app file, as it is started with `python <file>` anyway).
fn detect_script(
    ctx: &Ctx<'_>,
    spec: &Spec,
    server: Server,
    preferred: &[&str],
) -> Result<Option<Detected>, PlanError> {
    let mut file = ctx.sources.find_script(preferred, spec.import)?;
    if file.is_none() && server == Server::Python {
        file = ctx.sources.candidates()?.into_iter().next();
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let mut detected = Detected::new(spec, ctx.deps_file);
    detected.cmd = Some(match server {
        Server::Python => command::python_file(&file),
        other => command::for_app(
            other,
            &app::target(&file, "app".to_owned(), None),
            Extra::default(),
            false,
        ),
    });
    detected.server = Some(match server {
        Server::Python => Decision::new(Server::Python, Source::Default),
        other => Decision::new(
            other,
            Source::detected(ctx.deps_file, format!("{} is installed", spec.dist)),
        ),
    });
    detected.cmd_file = Some(file);
    Ok(Some(detected))
}

/// Django: the project module from the settings, served by the first installed server that
/// speaks its interface (WSGI or ASGI), else the development server.
fn detect_django(ctx: &Ctx<'_>, spec: &Spec, manage_py: &str) -> Result<Detected, PlanError> {
    let project = ctx.sources.project();
    let mut detected = Detected::new(spec, ctx.deps_file);
    detected.framework.source = Source::detected(
        manage_py,
        format!("manage.py and the django dependency in {}", ctx.deps_file),
    );
    let info = django::inspect(project, manage_py)?;
    let mut order: Vec<Server> = Vec::new();
    if info.wsgi.is_some() {
        order.push(Server::Gunicorn);
    }
    if info.asgi.is_some() {
        order.extend([Server::Uvicorn, Server::Hypercorn, Server::Daphne]);
    }
    if info.wsgi.is_some() {
        order.push(Server::Uwsgi);
    }
    let probe = app::target("", "application".to_owned(), None);
    let server = ctx.server(&order, &probe);
    let asgi = matches!(
        server.as_ref().map(|s| s.value),
        Some(Server::Uvicorn | Server::Hypercorn | Server::Daphne)
    );
    let (module, variable) = if asgi { &info.asgi } else { &info.wsgi }
        .clone()
        .unwrap_or_default();
    let base_dir = (!info.base_dir.is_empty()).then(|| info.base_dir.clone());
    let file = format!("{}.py", module.replace('.', "/"));
    let target = AppTarget {
        file: base_dir
            .as_ref()
            .map_or(file.clone(), |d| format!("{d}/{file}")),
        module: module.clone(),
        variable,
        line: None,
        app_dir: base_dir,
    };
    let server = server.unwrap_or_else(|| {
        detected.warnings.push("no production server (gunicorn, uvicorn, hypercorn, daphne, uwsgi) is installed; running Django's development server — add gunicorn to the dependencies".to_owned());
        Decision::new(Server::DjangoRunserver, Source::Default)
    });
    detected.cmd = Some(command::for_app(
        server.value,
        &target,
        Extra::default(),
        true,
    ));
    detected.server = Some(server);
    if !module.is_empty() {
        detected.app = Some(target);
    }
    detected.django = Some(info);
    Ok(detected)
}
