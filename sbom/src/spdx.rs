//! SPDX 2.3 JSON: the project as the described package; the image, each layer and every package
//! as packages; `CONTAINS` from the image to its layers and from each layer to the packages it
//! holds; `DEPENDS_ON` from the project to the Python packages pyslip installed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inventory::{Inventory, Package, PackageKind};

/// The SPDX media type (the referrer's `artifactType`).
pub const MEDIA_TYPE: &str = "application/spdx+json";
const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<String>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: String,
    license_declared: String,
    copyright_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
}

/// An SPDX identifier from free text: `SPDXRef-` then letters, digits, `.` and `-` only.
fn spdx_id(kind: &str, parts: &[&str]) -> String {
    let raw = parts.join("-");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{clean}")
}

/// Hands out identifiers, making repeated ones unique (`…-2`).
#[derive(Default)]
struct Ids(BTreeMap<String, usize>);

impl Ids {
    fn unique(&mut self, id: String) -> String {
        let n = self.0.entry(id.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { id } else { format!("{id}-{n}") }
    }
}

fn sha256(hex: &str) -> Vec<Checksum> {
    vec![Checksum {
        algorithm: "SHA256",
        checksum_value: hex.to_owned(),
    }]
}

fn license_or_noassertion(license: Option<&String>) -> String {
    license.cloned().unwrap_or_else(|| NOASSERTION.to_owned())
}

fn package(id: String, p: &Package) -> SpdxPackage {
    let (purpose, source_info, comment) = match p.kind {
        PackageKind::Python => (
            Some("LIBRARY"),
            p.file
                .as_ref()
                .and_then(|f| f.filename.clone())
                .map(|f| format!("installed from {f}")),
            p.detail.as_ref().map(|d| format!("metadata at {d}")),
        ),
        PackageKind::Deb => (
            None,
            p.detail
                .as_ref()
                .map(|s| format!("built from the Debian source package {s}")),
            None,
        ),
    };
    SpdxPackage {
        spdx_id: id,
        name: p.name.clone(),
        version_info: Some(p.version.clone()),
        package_file_name: p.file.as_ref().and_then(|f| f.filename.clone()),
        download_location: p
            .file
            .as_ref()
            .and_then(|f| f.url.clone())
            .unwrap_or_else(|| NOASSERTION.to_owned()),
        files_analyzed: false,
        checksums: p
            .file
            .as_ref()
            .map(|f| sha256(&f.sha256))
            .unwrap_or_default(),
        license_concluded: NOASSERTION.to_owned(),
        license_declared: license_or_noassertion(p.license.as_ref()),
        copyright_text: NOASSERTION.to_owned(),
        source_info,
        comment,
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: p.purl.clone(),
        }],
        primary_package_purpose: purpose,
    }
}

/// The document namespace: unique per image, derived from its manifest digest.
pub fn namespace(inv: &Inventory) -> String {
    format!(
        "https://spdx.org/spdxdocs/pyslip/{}-{}",
        spdx_id("", &[&inv.project.name]).trim_start_matches("SPDXRef--"),
        inv.image.digest.hex()
    )
}

/// The SPDX 2.3 JSON document, pretty-printed, with a final newline.
pub fn to_json(inv: &Inventory) -> Vec<u8> {
    let mut ids = Ids::default();
    let mut rels = Vec::new();
    let rel = |a: &str, kind: &'static str, b: &str| Relationship {
        spdx_element_id: a.to_owned(),
        relationship_type: kind,
        related_spdx_element: b.to_owned(),
    };
    let project_id = ids.unique("SPDXRef-Project".to_owned());
    let image_id = ids.unique("SPDXRef-Image".to_owned());
    rels.push(rel("SPDXRef-DOCUMENT", "DESCRIBES", &project_id));
    let mut packages = vec![
        SpdxPackage {
            spdx_id: project_id.clone(),
            name: inv.project.name.clone(),
            version_info: inv.project.version.clone(),
            package_file_name: None,
            download_location: NOASSERTION.to_owned(),
            files_analyzed: false,
            checksums: Vec::new(),
            license_concluded: NOASSERTION.to_owned(),
            license_declared: license_or_noassertion(inv.project.license.as_ref()),
            copyright_text: NOASSERTION.to_owned(),
            source_info: None,
            comment: Some(format!("built into the image {}", inv.image.digest)),
            external_refs: Vec::new(),
            primary_package_purpose: Some("APPLICATION"),
        },
        SpdxPackage {
            spdx_id: image_id.clone(),
            name: format!("{} image", inv.project.name),
            version_info: Some(inv.image.digest.to_string()),
            package_file_name: None,
            download_location: NOASSERTION.to_owned(),
            files_analyzed: false,
            checksums: sha256(inv.image.digest.hex()),
            license_concluded: NOASSERTION.to_owned(),
            license_declared: NOASSERTION.to_owned(),
            copyright_text: NOASSERTION.to_owned(),
            source_info: inv
                .distro
                .as_ref()
                .map(|d| format!("base distribution: {d}")),
            comment: Some(format!(
                "OCI image manifest {} ({}), platform {}",
                inv.image.digest, inv.image.media_type, inv.image.platform
            )),
            external_refs: Vec::new(),
            primary_package_purpose: Some("CONTAINER"),
        },
    ];
    let mut layer_ids = Vec::new();
    for (index, layer) in inv.layers.iter().enumerate() {
        let id = ids.unique(format!("SPDXRef-Layer-{index}"));
        rels.push(rel(&image_id, "CONTAINS", &id));
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: format!("layer {index} ({})", layer.origin),
            version_info: Some(layer.digest.to_string()),
            package_file_name: None,
            download_location: NOASSERTION.to_owned(),
            files_analyzed: false,
            checksums: sha256(layer.digest.hex()),
            license_concluded: NOASSERTION.to_owned(),
            license_declared: NOASSERTION.to_owned(),
            copyright_text: NOASSERTION.to_owned(),
            source_info: None,
            comment: layer
                .created_by
                .as_ref()
                .map(|c| format!("created by: {c}")),
            external_refs: Vec::new(),
            primary_package_purpose: Some("ARCHIVE"),
        });
        layer_ids.push(id);
    }
    for layer in &inv.project.layers {
        if let Some(layer_id) = layer_ids.get(*layer) {
            rels.push(rel(layer_id, "CONTAINS", &project_id));
        }
    }
    let dependencies: Vec<&Package> = inv.project_dependencies().collect();
    for p in &inv.packages {
        let (kind, parts) = match p.kind {
            PackageKind::Python => ("PyPI", vec![p.name.as_str(), p.version.as_str()]),
            PackageKind::Deb => ("Deb", vec![p.name.as_str(), p.version.as_str()]),
        };
        let id = ids.unique(spdx_id(kind, &parts));
        if let Some(layer_id) = layer_ids.get(p.layer) {
            rels.push(rel(layer_id, "CONTAINS", &id));
        }
        if dependencies.iter().any(|d| std::ptr::eq(*d, p)) {
            rels.push(rel(&project_id, "DEPENDS_ON", &id));
        }
        packages.push(package(id, p));
    }
    rels.sort();
    let doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{} image {}", inv.project.name, inv.image.digest),
        document_namespace: namespace(inv),
        creation_info: CreationInfo {
            created: inv.created.clone(),
            creators: vec![format!("Tool: {}", inv.tool)],
            comment: (!inv.lock_sources.is_empty())
                .then(|| format!("file hashes from {}", inv.lock_sources.join(", "))),
        },
        packages,
        relationships: rels,
        has_extracted_licensing_infos: inv
            .license_refs
            .iter()
            .map(|id| ExtractedLicense {
                license_id: id.clone(),
                extracted_text: format!(
                    "{id}: see the license files of the packages that declare it"
                ),
                name: id.trim_start_matches("LicenseRef-").to_owned(),
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
