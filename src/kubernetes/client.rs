//! The Kubernetes client: built from kube's defaults (the kubeconfig of
//! `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account)
//! the first time a step needs it, then shared by every step and target.

use super::KubeError;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// A cheaply cloned handle to one lazily built `kube::Client`. Building is
/// deferred so that a daemon without Kubernetes steps never reads a
/// kubeconfig, and a failed build is tried again on the next use.
#[derive(Clone)]
pub struct KubeClient {
    /// Where the configuration comes from.
    source: Arc<Source>,
    /// The client, once built.
    client: Arc<OnceCell<kube::Client>>,
}

/// Where a [`KubeClient`]'s configuration comes from.
enum Source {
    /// kube's defaults: kubeconfig, then in-cluster.
    Defaults,
    /// A given configuration (tests: the fake API server's URL).
    Config(Box<kube::Config>),
}

impl KubeClient {
    /// A handle that builds its client from kube's defaults on first use.
    pub fn from_defaults() -> KubeClient {
        KubeClient::with_source(Source::Defaults)
    }

    /// A handle on a client already built (the daemon's, from
    /// `daemon.kubeconfig` or kube's defaults).
    pub fn from_client(client: kube::Client) -> KubeClient {
        let handle = KubeClient::with_source(Source::Defaults);
        // A fresh cell: setting it cannot fail.
        let _ = handle.client.set(client);
        handle
    }

    /// A handle that builds its client from `config` on first use.
    pub fn from_config(config: kube::Config) -> KubeClient {
        KubeClient::with_source(Source::Config(Box::new(config)))
    }

    /// A handle for an API server at `url` with no credentials (tests, or a
    /// local `kubectl proxy`).
    pub fn for_url(url: &str) -> Result<KubeClient, KubeError> {
        let uri = url
            .parse()
            .map_err(|error| KubeError::Client(format!("bad API server URL `{url}`: {error}")))?;
        Ok(KubeClient::from_config(kube::Config::new(uri)))
    }

    fn with_source(source: Source) -> KubeClient {
        KubeClient {
            source: Arc::new(source),
            client: Arc::new(OnceCell::new()),
        }
    }

    /// The client, built now if it was not yet. Must run inside the tokio
    /// runtime that will use it (the client's worker lives there).
    pub async fn get(&self) -> Result<kube::Client, KubeError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                match self.source.as_ref() {
                    Source::Defaults => kube::Client::try_default().await,
                    Source::Config(config) => kube::Client::try_from(config.as_ref().clone()),
                }
                .map_err(|error| KubeError::Client(error.to_string()))
            })
            .await?;
        Ok(client.clone())
    }
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source.as_ref() {
            Source::Defaults => "defaults".to_owned(),
            Source::Config(config) => config.cluster_url.to_string(),
        };
        f.debug_struct("KubeClient")
            .field("source", &source)
            .field("built", &self.client.initialized())
            .finish()
    }
}
