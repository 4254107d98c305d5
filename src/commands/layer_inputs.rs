//! What `pyslip inspect` shows for pyslip's layers: the step that made each one and the inputs
//! of its cache key, recorded as annotations of the layer's descriptor in the manifest.
//!
//! Only content-derived inputs are recorded (the base digest, platform, Python, installer and
//! the digests of the files the step read), never index URLs or other settings from the
//! environment, so the manifest stays the same on any machine for the same project. Layer and
//! config digests do not change; the manifest gains these annotations.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use layers::Digest;
use pyslip_plan::{BuildPlan, Installer};
use pyslip_registry::Platform;
use serde_json::{Map, Value, json};

use crate::commands::inspect::{INPUTS_ANNOTATION, ORIGIN_ANNOTATION};
use crate::commands::report::origin_name;
use crate::image::{LayerOrigin, NewLayer};

/// `uv <version>`, `uv (--uv PATH)` or `pip (the image's)`.
fn installer(plan: &BuildPlan, uv_override: bool) -> String {
    match plan.install.as_ref().map(|i| i.installer) {
        Some(Installer::Pip) => "pip (the image's)".to_owned(),
        _ if uv_override => "uv (--uv PATH)".to_owned(),
        _ => format!("uv {}", pyslip_install::UV_VERSION),
    }
}

/// `{"files": {path: sha256}}` of the install's input files.
fn input_files(plan: &BuildPlan, dir: &Path) -> Result<Map<String, Value>> {
    let mut files = Map::new();
    for input in plan.install.iter().flat_map(|i| &i.inputs) {
        let bytes = fs_err::read(dir.join(input))?;
        files.insert(input.clone(), json!(Digest::of(&bytes).to_string()));
    }
    Ok(files)
}

/// Annotate pyslip's layers with their origin and, for the cached ones, their key inputs.
/// `shipped` is the app layer's diff_id: a digest of exactly the project files shipped, which
/// the project and collectstatic layers are keyed on.
pub fn annotate(
    layers: &mut [NewLayer],
    plan: &BuildPlan,
    dir: &Path,
    base: &Digest,
    platform: &Platform,
    uv_override: bool,
    shipped: &Digest,
) -> Result<()> {
    let common = json!({
        "base": base.to_string(),
        "platform": platform.to_string(),
        "python": plan.python.value,
        "installer": installer(plan, uv_override),
    });
    let mut below: Vec<String> = Vec::new();
    for layer in layers.iter_mut() {
        let mut inputs = common.clone();
        match layer.origin {
            LayerOrigin::Deps => inputs["files"] = Value::Object(input_files(plan, dir)?),
            LayerOrigin::Project | LayerOrigin::Static => {
                inputs["layers below"] = json!(below.join(", "));
                inputs["project files"] = json!(shipped.to_string());
            }
            LayerOrigin::App | LayerOrigin::Base => inputs = Value::Null,
        }
        let mut annotations = BTreeMap::from([(
            ORIGIN_ANNOTATION.to_owned(),
            origin_name(layer.origin).to_owned(),
        )]);
        if !inputs.is_null() {
            annotations.insert(INPUTS_ANNOTATION.to_owned(), inputs.to_string());
        }
        layer.annotations = annotations;
        below.push(layer.diff_id.to_string());
    }
    Ok(())
}
