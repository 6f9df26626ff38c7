//! Reading the manifests: YAML documents, strict typing with k8s-openapi,
//! and where a file inside a container comes from.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, Namespace, PersistentVolumeClaim, PodSpec, Service,
    ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One YAML document and where it came from.
pub struct Manifest {
    /// File and document index, for messages.
    pub origin: String,
    /// The document as JSON, as the API server would read it.
    pub value: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
}

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Every non-empty YAML document of `text`.
pub fn documents(text: &str, origin: &str) -> Vec<Manifest> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .enumerate()
        .map(|(index, document)| {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{origin}: document {index}: not YAML: {e}"));
            Manifest {
                origin: format!("{origin} (document {index})"),
                value,
            }
        })
        .filter(|m| !m.value.is_null())
        .collect()
}

/// The documents of these files of `deploy/kubernetes`.
pub fn load(files: &[&str]) -> Vec<Manifest> {
    files
        .iter()
        .flat_map(|file| {
            let path = deploy_dir().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            documents(&text, file)
        })
        .collect()
}

/// The files the kustomization lists.
pub fn kustomization_resources() -> Vec<String> {
    let manifests = load(&["kustomization.yaml"]);
    let resources = manifests[0].value["resources"].as_array().cloned();
    resources
        .unwrap_or_default()
        .iter()
        .map(|r| r.as_str().expect("resources are file names").to_owned())
        .collect()
}

pub fn install() -> Vec<Manifest> {
    let files = kustomization_resources();
    load(&files.iter().map(String::as_str).collect::<Vec<_>>())
}

pub fn sidecar() -> Vec<Manifest> {
    load(&["examples/sidecar.yaml"])
}

/// Deserialises into `T`, failing on any key `T` does not know.
pub fn strict<T: DeserializeOwned>(manifest: &Manifest) -> Result<T, String> {
    let mut ignored = Vec::new();
    let typed = serde_ignored::deserialize(manifest.value.clone(), |path| {
        ignored.push(path.to_string())
    })
    .map_err(|e| format!("{}: {e}", manifest.origin))?;
    if ignored.is_empty() {
        Ok(typed)
    } else {
        Err(format!("{}: unknown fields: {ignored:?}", manifest.origin))
    }
}

/// Deserialises `manifest` strictly into the type of its kind; a kind this
/// test does not know is a failure too, so a new manifest gets checked.
pub fn check_typed(manifest: &Manifest) -> Result<(), String> {
    fn go<T: DeserializeOwned>(m: &Manifest) -> Result<(), String> {
        strict::<T>(m).map(drop)
    }
    match manifest.kind() {
        "Namespace" => go::<Namespace>(manifest),
        "ServiceAccount" => go::<ServiceAccount>(manifest),
        "Role" => go::<Role>(manifest),
        "RoleBinding" => go::<RoleBinding>(manifest),
        "ConfigMap" => go::<ConfigMap>(manifest),
        "Service" => go::<Service>(manifest),
        "PersistentVolumeClaim" => go::<PersistentVolumeClaim>(manifest),
        "Deployment" => go::<Deployment>(manifest),
        "PodDisruptionBudget" => go::<PodDisruptionBudget>(manifest),
        other => Err(format!("{}: unexpected kind {other:?}", manifest.origin)),
    }
}

/// The one object of `kind` named `name`, typed.
pub fn one<T: DeserializeOwned>(manifests: &[Manifest], kind: &str, name: &str) -> T {
    let found: Vec<_> = manifests
        .iter()
        .filter(|m| m.kind() == kind && m.name() == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} named {name}");
    strict(found[0]).unwrap_or_else(|e| panic!("{e}"))
}

pub fn all<T: DeserializeOwned>(manifests: &[Manifest], kind: &str) -> Vec<T> {
    manifests
        .iter()
        .filter(|m| m.kind() == kind)
        .map(|m| strict(m).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Where a file inside a container comes from.
#[derive(Debug, PartialEq)]
pub enum FileSource {
    /// A key of a ConfigMap.
    ConfigMap { name: String, key: String },
    /// A key of a Secret.
    Secret { name: String, key: String },
}

/// The ConfigMap or Secret key that `path` is in `container`, if any.
pub fn file_source(pod: &PodSpec, container: &Container, path: &Path) -> Option<FileSource> {
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| m.sub_path.is_none() && path.parent() == Some(Path::new(&m.mount_path)))?;
    let file = path.file_name()?.to_string_lossy().into_owned();
    let volumes = pod.volumes.clone().unwrap_or_default();
    let volume = volumes.iter().find(|v| v.name == mount.name)?;
    // A key lands at its item's path; without items every key lands at its
    // own name, so any file name is taken to be a key.
    let key_at = |items: &Option<Vec<KeyToPath>>| match items {
        Some(items) => items.iter().find(|i| i.path == file).map(|i| i.key.clone()),
        None => Some(file.clone()),
    };
    if let Some(map) = &volume.config_map {
        let key = key_at(&map.items)?;
        return Some(FileSource::ConfigMap {
            name: map.name.clone(),
            key,
        });
    }
    if let Some(secret) = &volume.secret {
        let key = key_at(&secret.items)?;
        let name = secret.secret_name.clone()?;
        return Some(FileSource::Secret { name, key });
    }
    let sources = volume
        .projected
        .as_ref()?
        .sources
        .clone()
        .unwrap_or_default();
    sources.iter().find_map(|source| {
        if let Some(map) = &source.config_map {
            let key = key_at(&map.items)?;
            return Some(FileSource::ConfigMap {
                name: map.name.clone(),
                key,
            });
        }
        let secret = source.secret.as_ref()?;
        let key = key_at(&secret.items)?;
        Some(FileSource::Secret {
            name: secret.name.clone(),
            key,
        })
    })
}
