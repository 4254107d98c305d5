//! Django: `manage.py`, the settings module, the WSGI/ASGI project module and `collectstatic`.

use crate::error::PlanError;
use crate::project::Project;

/// What the Django project looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoProject {
    /// `manage.py`, relative (root or one level down).
    pub manage_py: String,
    /// The folder holding manage.py (`""` for the root); servers run from here.
    pub base_dir: String,
    /// `DJANGO_SETTINGS_MODULE` from manage.py.
    pub settings: Option<String>,
    /// The settings file read, relative to the project.
    pub settings_file: Option<String>,
    /// WSGI module and variable, e.g. (`mysite.wsgi`, `application`).
    pub wsgi: Option<(String, String)>,
    /// ASGI module and variable.
    pub asgi: Option<(String, String)>,
    /// How the project module was found.
    pub wsgi_source: String,
    /// `STATIC_ROOT` as written, when set to something other than `None`.
    pub static_root: Option<String>,
    /// `django.contrib.staticfiles` appears in the settings.
    pub staticfiles: bool,
}

/// Finds `manage.py` at the root or one level down.
pub fn find_manage_py(project: &Project) -> Result<Option<String>, PlanError> {
    if project.is_file("manage.py") {
        return Ok(Some("manage.py".to_owned()));
    }
    for dir in project.subdirs("")? {
        let candidate = format!("{dir}/manage.py");
        if project.is_file(&candidate) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// The first quoted string after `needle` on a line containing it.
fn quoted_after(source: &str, needle: &str) -> Option<(String, usize)> {
    for (index, line) in source.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let Some(pos) = line.find(needle) else {
            continue;
        };
        // Skip the quote closing the needle itself (`"DJANGO_SETTINGS_MODULE", "x.settings"`).
        let rest = line
            .get(pos + needle.len()..)?
            .trim_start_matches(['"', '\'']);
        let start = rest.find(['"', '\''])?;
        let quote = rest.get(start..start + 1)?;
        let body = rest.get(start + 1..)?;
        let end = body.find(quote)?;
        return Some((body.get(..end)?.to_owned(), index + 1));
    }
    None
}

/// `NAME = value` at module level, value as written (comments stripped).
fn assignment(source: &str, name: &str) -> Option<String> {
    source.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.trim_start().strip_prefix('=')?;
        if value.starts_with('=') {
            return None;
        }
        Some(value.split('#').next().unwrap_or(value).trim().to_owned())
    })
}

fn join(base: &str, rel: &str) -> String {
    if base.is_empty() {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    }
}

/// Splits `mysite.wsgi.application` into (`mysite.wsgi`, `application`).
fn split_callable(path: &str) -> Option<(String, String)> {
    let (module, var) = path.rsplit_once('.')?;
    Some((module.to_owned(), var.to_owned()))
}

/// Reads the Django project around `manage_py`.
pub fn inspect(project: &Project, manage_py: &str) -> Result<DjangoProject, PlanError> {
    let base_dir = manage_py
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| dir.to_owned());
    let manage = project.read(manage_py)?.unwrap_or_default();
    let settings = quoted_after(&manage, "DJANGO_SETTINGS_MODULE").map(|(s, _)| s);
    let mut settings_file = None;
    let mut settings_text = String::new();
    if let Some(module) = &settings {
        let path = module.replace('.', "/");
        for candidate in [format!("{path}.py"), format!("{path}/__init__.py")] {
            let rel = join(&base_dir, &candidate);
            if let Some(text) = project.read(&rel)? {
                settings_file = Some(rel);
                settings_text = text;
                break;
            }
        }
    }
    let strip_quotes = |v: String| v.trim_matches(['"', '\'']).to_owned();
    let mut wsgi = assignment(&settings_text, "WSGI_APPLICATION")
        .map(strip_quotes)
        .and_then(|v| split_callable(&v));
    let asgi_setting = assignment(&settings_text, "ASGI_APPLICATION")
        .map(strip_quotes)
        .and_then(|v| split_callable(&v));
    let mut wsgi_source = format!(
        "WSGI_APPLICATION in {}",
        settings_file.clone().unwrap_or_default()
    );
    if wsgi.is_none() {
        wsgi_source = "the folder holding wsgi.py".to_owned();
        for dir in project.subdirs(&base_dir)? {
            if project.is_file(&join(&base_dir, &format!("{dir}/wsgi.py"))) {
                wsgi = Some((format!("{dir}.wsgi"), "application".to_owned()));
                break;
            }
        }
    }
    // The ASGI module: ASGI_APPLICATION, else an asgi.py beside the wsgi module.
    let asgi = asgi_setting.or_else(|| {
        let (module, _) = wsgi.as_ref()?;
        let asgi_module = format!(
            "{}.asgi",
            module
                .rsplit_once('.')
                .map_or(module.as_str(), |(pkg, _)| pkg)
        );
        let file = join(&base_dir, &format!("{}.py", asgi_module.replace('.', "/")));
        project
            .is_file(&file)
            .then(|| (asgi_module, "application".to_owned()))
    });
    let static_root =
        assignment(&settings_text, "STATIC_ROOT").filter(|v| v != "None" && !v.is_empty());
    let staticfiles = settings_text.contains("django.contrib.staticfiles");
    Ok(DjangoProject {
        manage_py: manage_py.to_owned(),
        base_dir,
        settings,
        settings_file,
        wsgi,
        asgi,
        wsgi_source,
        static_root,
        staticfiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_values() {
        let manage =
            "import os\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', \"mysite.settings\")\n";
        assert_eq!(
            quoted_after(manage, "DJANGO_SETTINGS_MODULE")
                .map(|(s, _)| s)
                .as_deref(),
            Some("mysite.settings")
        );
        let settings = "STATIC_URL = 'static/'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'  # collected\nWSGI_APPLICATION = 'mysite.wsgi.application'\n";
        assert_eq!(
            assignment(settings, "STATIC_ROOT").as_deref(),
            Some("BASE_DIR / 'staticfiles'")
        );
        assert_eq!(
            assignment(settings, "STATIC_URL").as_deref(),
            Some("'static/'")
        );
        assert_eq!(
            split_callable("mysite.wsgi.application"),
            Some(("mysite.wsgi".to_owned(), "application".to_owned()))
        );
    }
}
