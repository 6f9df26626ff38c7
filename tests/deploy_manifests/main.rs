//! The Kubernetes manifests in `deploy/kubernetes`, checked without a
//! cluster.
//!
//! - Every YAML document of every file there (examples included), and of
//!   what `kubectl kustomize deploy/kubernetes` renders, deserialises into
//!   the k8s-openapi type of its `kind`, strictly: k8s-openapi's types skip
//!   fields they do not know, so the documents are read through
//!   `serde_ignored`, which reports every skipped key with its path, and any
//!   skipped key fails the test. A misspelt `readinesProbe` is caught.
//! - The kustomization lists every manifest beside it (and not the
//!   examples), and renders exactly the objects of those files.
//! - RBAC is least privilege, exactly: deployments get/list/watch/patch,
//!   replicasets list/watch, leases get/create/update, granted by Roles in
//!   the namespaces that need them, no ClusterRole.
//! - The TOML in each ConfigMap is a valid rollguard configuration
//!   (`rollguard::config::parse`) for a Kubernetes target with the pipeline
//!   undo, rollout status, verify, in shadow mode.
//! - rollguard's container runs that file, is probed on /healthz and
//!   /readyz at `daemon.listen`, has requests and limits, runs without any
//!   privilege, and finds its state directory and token file mounted.
//!
//! `live_kubectl::kubectl_kustomize_renders_the_install` runs the real
//! kubectl (/usr/bin/kubectl) with a throw-away HOME and kubeconfig; without
//! kubectl on PATH it fails, saying why, and `scripts/test` leaves it out.

mod manifests;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, PodSpec, Probe, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use manifests::{
    FileSource, Manifest, all, check_typed, deploy_dir, documents, file_source, install,
    kustomization_resources, load, one, sidecar, strict,
};
use rollguard::config::{Config, MapEnvironment, ReleaseConfig, StepKind};
use rollguard::model::Mode;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kinds the install renders, in the order `kubectl kustomize` sorts them.
const INSTALL_KINDS: &[&str] = &[
    "Namespace",
    "ServiceAccount",
    "Role",
    "Role",
    "RoleBinding",
    "RoleBinding",
    "ConfigMap",
    "Service",
    "PersistentVolumeClaim",
    "Deployment",
    "PodDisruptionBudget",
];

/// What rollguard may do, as (API group, resource, verb): nothing more.
const LEAST_PRIVILEGE: &[(&str, &str, &[&str])] = &[
    ("apps", "deployments", &["get", "list", "watch", "patch"]),
    ("apps", "replicasets", &["list", "watch"]),
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    ),
];

#[test]
fn every_manifest_file_deserialises_strictly() {
    let mut files = Vec::new();
    let mut dirs = vec![deploy_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut checked = 0;
    for path in &files {
        let relative = path
            .strip_prefix(deploy_dir())
            .expect("under deploy/kubernetes");
        if relative == Path::new("kustomization.yaml") {
            continue;
        }
        for manifest in load(&[&relative.to_string_lossy()]) {
            check_typed(&manifest).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(
        checked >= INSTALL_KINDS.len() + 6,
        "only {checked} documents"
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    let path = deploy_dir().join("deployment.yaml");
    let text = std::fs::read_to_string(path).expect("deployment.yaml is readable");
    assert!(text.contains("readinessProbe:"));
    let misspelt = text.replace("readinessProbe:", "readinesProbe:");
    let manifests = documents(&misspelt, "misspelt deployment.yaml");
    let error = check_typed(&manifests[0]).expect_err("a misspelt field is an error");
    assert!(error.contains("readinesProbe"), "{error}");
    let wrong_type = text.replace("replicas: 1", "replicas: one");
    let manifests = documents(&wrong_type, "deployment.yaml with replicas: one");
    assert!(check_typed(&manifests[0]).is_err());
}

#[test]
fn the_kustomization_lists_every_manifest_beside_it() {
    let listed: BTreeSet<String> = kustomization_resources().into_iter().collect();
    let beside: BTreeSet<String> = std::fs::read_dir(deploy_dir())
        .expect("deploy/kubernetes is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, beside,
        "examples/ stays out; every other manifest is in"
    );
}

/// Runs the real kubectl: without it on PATH it fails, and `scripts/test`
/// leaves it out.
mod live_kubectl {
    use super::*;

    #[test]
    fn kubectl_kustomize_renders_the_install() {
        let home = tempfile::tempdir().expect("a temporary directory");
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(deploy_dir())
            .env("HOME", home.path())
            .env("KUBECONFIG", home.path().join("kubeconfig"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs kubectl on PATH (the machine image ships /usr/bin/kubectl); \
                 scripts/test leaves out the live_kubectl:: tests without it: {e}"
                )
            });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kubectl kustomize failed: {stderr}"
        );
        let rendered = documents(
            &String::from_utf8_lossy(&output.stdout),
            "kubectl kustomize",
        );
        let kinds: Vec<&str> = rendered.iter().map(Manifest::kind).collect();
        assert_eq!(kinds, INSTALL_KINDS);
        for manifest in &rendered {
            check_typed(manifest).unwrap_or_else(|e| panic!("{e}"));
        }
        // No transformer changes an object: what is rendered is what the files say.
        let objects = |ms: &[Manifest]| -> BTreeSet<String> {
            ms.iter().map(|m| m.value.to_string()).collect()
        };
        assert_eq!(objects(&rendered), objects(&install()));
    }
}

/// (group, resource, verb) granted to the ServiceAccount `namespace/name`,
/// with the namespace each grant holds in.
fn grants(manifests: &[Manifest], namespace: &str, name: &str) -> BTreeSet<(String, String)> {
    assert!(
        !manifests
            .iter()
            .any(|m| m.kind() == "ClusterRole" || m.kind() == "ClusterRoleBinding"),
        "no cluster-wide RBAC"
    );
    let roles: Vec<Role> = all(manifests, "Role");
    let mut granted = BTreeSet::new();
    for binding in all::<RoleBinding>(manifests, "RoleBinding") {
        let subjects = binding.subjects.unwrap_or_default();
        let to_us = subjects.iter().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == name
                && s.namespace.as_deref() == Some(namespace)
        });
        if !to_us {
            continue;
        }
        let bound_in = binding
            .metadata
            .namespace
            .expect("a RoleBinding has a namespace");
        assert_eq!(binding.role_ref.kind, "Role");
        let role = roles
            .iter()
            .find(|r| {
                r.metadata.name.as_deref() == Some(&binding.role_ref.name)
                    && r.metadata.namespace.as_deref() == Some(&bound_in)
            })
            .unwrap_or_else(|| panic!("Role {} in {bound_in} exists", binding.role_ref.name));
        for rule in role.rules.clone().unwrap_or_default() {
            assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none());
            for group in rule.api_groups.clone().unwrap_or_default() {
                for resource in rule.resources.clone().unwrap_or_default() {
                    for verb in &rule.verbs {
                        granted.insert((bound_in.clone(), format!("{group}/{resource}/{verb}")));
                    }
                }
            }
        }
    }
    granted
}

/// The least-privilege grants, each in the namespace it is needed in.
fn least_privilege(workload_ns: &str, lease_ns: &str) -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for (group, resource, verbs) in LEAST_PRIVILEGE {
        let ns = if *resource == "leases" {
            lease_ns
        } else {
            workload_ns
        };
        for verb in *verbs {
            expected.insert((ns.to_owned(), format!("{group}/{resource}/{verb}")));
        }
    }
    expected
}

#[test]
fn rbac_grants_exactly_least_privilege() {
    // The install: Deployments where the configured target lives, the Lease
    // in rollguard's own namespace.
    let manifests = install();
    let config = config_of(&manifests, "rollguard-config");
    let watched = watched_namespaces(&config);
    assert_eq!(watched, ["default"]);
    let expected = least_privilege("default", "rollguard");
    assert_eq!(grants(&manifests, "rollguard", "rollguard"), expected);
    // The sidecar: everything in the app's namespace, for the pod's account.
    let manifests = sidecar();
    let expected = least_privilege("default", "default");
    assert_eq!(grants(&manifests, "default", "web"), expected);
}

/// The embedded TOML of ConfigMap `name`, parsed and validated by rollguard.
fn config_of(manifests: &[Manifest], name: &str) -> Config {
    let map: ConfigMap = manifests
        .iter()
        .find(|m| m.kind() == "ConfigMap" && m.name() == name)
        .map(|m| strict(m).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|| panic!("ConfigMap {name} exists"));
    let data = map.data.unwrap_or_default();
    let text = data.get("rollguard.toml").expect("key rollguard.toml");
    // The pod's /etc/rollguard also holds the Secret's api-token, which
    // check reads as run would.
    let mut env = MapEnvironment::with_path("/usr/local/bin:/usr/bin:/bin");
    env.files.insert(
        PathBuf::from("/etc/rollguard/api-token"),
        "a token\n".to_owned(),
    );
    rollguard::config::parse_with_env(text, Path::new(name), &env).unwrap_or_else(|e| panic!("{e}"))
}

fn watched_namespaces(config: &Config) -> Vec<String> {
    let namespaces: BTreeSet<_> = config
        .targets
        .iter()
        .filter_map(|t| t.release.namespace().map(str::to_owned))
        .collect();
    namespaces.into_iter().collect()
}

#[test]
fn configmaps_hold_valid_rollguard_configs() {
    for (manifests, name) in [
        (install(), "rollguard-config"),
        (sidecar(), "web-rollguard"),
    ] {
        let config = config_of(&manifests, name);
        assert_eq!(config.daemon.listen.to_string(), "0.0.0.0:9187", "{name}");
        assert_eq!(config.daemon.mode, Mode::Shadow, "{name}");
        assert!(config.targets.iter().all(|t| t.mode.is_none()), "{name}");
        assert!(!config.targets.is_empty(), "{name}");
        for target in &config.targets {
            let ReleaseConfig::Kubernetes(release) = &target.release else {
                panic!("{name}: a kubernetes release source");
            };
            assert!(
                release.container.is_some(),
                "{name}: the version is an image tag"
            );
            assert!(
                target
                    .probe
                    .iter()
                    .all(|p| p.url.contains(".svc.cluster.local"))
            );
            assert!(!target.metric.is_empty(), "{name}: a Prometheus metric");
            let steps: Vec<StepKind> = target.step.iter().map(|s| s.kind()).collect();
            let pipeline = [
                StepKind::KubernetesUndo,
                StepKind::KubernetesRolloutStatus,
                StepKind::Verify,
            ];
            assert_eq!(steps, pipeline, "{name}");
        }
    }
}

/// The path of an HTTP probe, and that it goes to `port`.
fn probe_path(probe: Option<&Probe>, container: &Container, port: u16) -> String {
    let get = probe
        .and_then(|p| p.http_get.clone())
        .expect("an httpGet probe");
    let ports = container.ports.clone().unwrap_or_default();
    let number = match &get.port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .expect("the named port exists"),
    };
    assert_eq!(number, i32::from(port), "probes reach daemon.listen");
    get.path.unwrap_or_default()
}

/// Checks the pod that runs rollguard with `config` from ConfigMap
/// `config_map`.
fn check_rollguard_pod(pod: &PodSpec, config: &Config, config_map: &str) -> Container {
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "rollguard")
        .cloned()
        .expect("a container named rollguard");
    let command = container.command.clone().unwrap_or_default();
    let config_path = PathBuf::from("/etc/rollguard/rollguard.toml");
    assert_eq!(
        command[1..],
        ["run", "--config", "/etc/rollguard/rollguard.toml"]
    );
    assert_eq!(
        file_source(pod, &container, &config_path),
        Some(FileSource::ConfigMap {
            name: config_map.into(),
            key: "rollguard.toml".into()
        })
    );
    // Probes on daemon.listen.
    let port = config.daemon.listen.port();
    assert_eq!(
        probe_path(container.liveness_probe.as_ref(), &container, port),
        "/healthz"
    );
    assert_eq!(
        probe_path(container.readiness_probe.as_ref(), &container, port),
        "/readyz"
    );
    // Requests and limits.
    let resources = container.resources.clone().expect("resources");
    for (what, amounts) in [
        ("requests", resources.requests),
        ("limits", resources.limits),
    ] {
        let amounts = amounts.unwrap_or_else(|| panic!("resource {what}"));
        assert!(
            amounts.contains_key("cpu") && amounts.contains_key("memory"),
            "{what}"
        );
    }
    // No privilege: the container's settings, or the pod's where Kubernetes
    // lets the pod set them.
    let sc = container
        .security_context
        .clone()
        .expect("a container securityContext");
    let pod_sc = pod.security_context.clone().unwrap_or_default();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root.or(pod_sc.run_as_non_root), Some(true));
    let capabilities = sc.capabilities.clone().expect("capabilities");
    assert_eq!(capabilities.drop, Some(vec!["ALL".to_owned()]));
    assert!(capabilities.add.unwrap_or_default().is_empty());
    let seccomp = sc
        .seccomp_profile
        .or(pod_sc.seccomp_profile)
        .expect("seccomp");
    assert_eq!(seccomp.type_, "RuntimeDefault");
    // Shutdown grace fits in the pod's termination grace period.
    let grace = pod
        .termination_grace_period_seconds
        .expect("a termination grace");
    assert!(grace as u64 > config.daemon.shutdown_grace.as_secs());
    // A writable state directory.
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    let state = mounts
        .iter()
        .find(|m| Path::new(&m.mount_path) == config.daemon.state_dir)
        .expect("daemon.state_dir is a volume");
    assert_ne!(state.read_only, Some(true));
    container
}

#[test]
fn the_rollguard_deployment_is_probed_limited_and_unprivileged() {
    let manifests = install();
    let config = config_of(&manifests, "rollguard-config");
    let deployment: Deployment = one(&manifests, "Deployment", "rollguard");
    let spec = deployment.spec;
    let template = spec.template;
    let pod = template.spec.expect("a pod spec");
    let container = check_rollguard_pod(&pod, &config, "rollguard-config");
    assert_eq!(pod.service_account_name.as_deref(), Some("rollguard"));
    let _: ServiceAccount = one(&manifests, "ServiceAccount", "rollguard");

    // The token file comes from a Secret, which is not in the manifests.
    let token = config
        .daemon
        .api_token_file
        .clone()
        .expect("api_token_file");
    let source = file_source(&pod, &container, &token);
    let expected = FileSource::Secret {
        name: "rollguard-api-token".into(),
        key: "token".into(),
    };
    assert_eq!(source, Some(expected));

    // The journal survives restarts: a PVC, one pod at a time.
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    let state_mount = mounts
        .iter()
        .find(|m| Path::new(&m.mount_path) == config.daemon.state_dir)
        .expect("a state mount");
    let volumes = pod.volumes.clone().unwrap_or_default();
    let state = volumes
        .iter()
        .find(|v| v.name == state_mount.name)
        .expect("a state volume");
    let claim = state
        .persistent_volume_claim
        .as_ref()
        .expect("a PVC for the journal");
    let _: PersistentVolumeClaim = one(&manifests, "PersistentVolumeClaim", &claim.claim_name);
    assert_eq!(
        spec.strategy.and_then(|s| s.type_).as_deref(),
        Some("Recreate")
    );

    // The Service and the PDB select these pods; the Service reaches the API.
    let labels = template
        .metadata
        .and_then(|m| m.labels)
        .expect("pod labels");
    let selects = |selector: &BTreeMap<String, String>| {
        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    };
    let service: Service = one(&manifests, "Service", "rollguard");
    let service = service.spec.expect("a Service spec");
    assert!(selects(&service.selector.unwrap_or_default()));
    let ports = service.ports.unwrap_or_default();
    let port = config.daemon.listen.port();
    let target = ports
        .iter()
        .find_map(|p| p.target_port.clone())
        .expect("a targetPort");
    let names_listen = |name: &String| {
        let ports = container.ports.clone().unwrap_or_default();
        ports
            .iter()
            .any(|p| p.name.as_ref() == Some(name) && p.container_port == i32::from(port))
    };
    assert!(match &target {
        IntOrString::Int(n) => *n == i32::from(port),
        IntOrString::String(name) => names_listen(name),
    });
    let pdb: PodDisruptionBudget = one(&manifests, "PodDisruptionBudget", "rollguard");
    let pdb_selector = pdb
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.match_labels);
    assert!(selects(&pdb_selector.unwrap_or_default()));
}

#[test]
fn the_sidecar_watches_its_own_deployment() {
    let manifests = sidecar();
    let config = config_of(&manifests, "web-rollguard");
    let deployment: Deployment = one(&manifests, "Deployment", "web");
    let pod = deployment.spec.template.spec.expect("a pod spec");
    check_rollguard_pod(&pod, &config, "web-rollguard");
    let ReleaseConfig::Kubernetes(release) = &config.targets[0].release else {
        panic!("a kubernetes release source");
    };
    assert_eq!(
        Some(&release.namespace),
        deployment.metadata.namespace.as_ref()
    );
    assert_eq!(Some(&release.deployment), deployment.metadata.name.as_ref());
    let container = release.container.as_deref().expect("a container");
    assert!(pod.containers.iter().any(|c| c.name == container));
    // The pod runs as the ServiceAccount the Role is bound to, and only the
    // rollguard container gets its API token.
    let account = pod
        .service_account_name
        .as_deref()
        .expect("a ServiceAccount");
    let _: ServiceAccount = one(&manifests, "ServiceAccount", account);
    assert_eq!(pod.automount_service_account_token, Some(false));
    let volumes = pod.volumes.clone().unwrap_or_default();
    let has_token = |c: &Container| {
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        mounts.iter().any(|m| {
            m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
                && volumes.iter().any(|v| {
                    let sources = v.projected.as_ref().and_then(|p| p.sources.clone());
                    v.name == m.name
                        && sources
                            .unwrap_or_default()
                            .iter()
                            .any(|s| s.service_account_token.is_some())
                })
        })
    };
    for c in &pod.containers {
        assert_eq!(has_token(c), c.name == "rollguard", "{}", c.name);
    }
}
