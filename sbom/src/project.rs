//! The project's own name and version: `[project]` of `pyproject.toml`, else `[tool.poetry]`,
//! else the directory's name.

use std::path::Path;

use crate::inventory::ProjectInfo;

/// Read the project's name and (static) version; never fails: a project without a readable
/// pyproject is named after its directory.
pub fn project_info(dir: &Path) -> ProjectInfo {
    let from_pyproject = fs_err::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            let pick = |t: &toml::Table| {
                let name = t.get("name")?.as_str()?.trim().to_owned();
                let version = t.get("version").and_then(|v| v.as_str()).map(str::to_owned);
                (!name.is_empty()).then_some(ProjectInfo { name, version })
            };
            table
                .get("project")
                .and_then(toml::Value::as_table)
                .and_then(pick)
                .or_else(|| table.get("tool")?.get("poetry")?.as_table().and_then(pick))
        });
    from_pyproject.unwrap_or_else(|| {
        let canonical = fs_err::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        let name = canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "app".to_owned());
        ProjectInfo {
            name,
            version: None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyproject_poetry_or_directory() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("my-app");
        fs_err::create_dir(&app).unwrap();
        assert_eq!(project_info(&app).name, "my-app");
        fs_err::write(
            app.join("pyproject.toml"),
            "[tool.poetry]\nname = \"poet\"\nversion = \"1.2\"\n",
        )
        .unwrap();
        let info = project_info(&app);
        assert_eq!(
            (info.name.as_str(), info.version.as_deref()),
            ("poet", Some("1.2"))
        );
        fs_err::write(
            app.join("pyproject.toml"),
            "[project]\nname = \"uvapp\"\ndynamic = [\"version\"]\n",
        )
        .unwrap();
        assert_eq!(project_info(&app).version, None);
        fs_err::write(app.join("pyproject.toml"), "not toml [").unwrap();
        assert_eq!(project_info(&app).name, "my-app");
    }
}
