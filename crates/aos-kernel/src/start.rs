//! Start-up (`kernel.md` §4.1) and the embedder's entry points that reach
//! above the kernel's state: services, recovery, dispatches, the context
//! engine.

use crate::hooks::HookScope;
use crate::params::StoreResult;
use crate::services::{ServiceDriver, ServiceOwner};
use crate::skills::resolve_defaults;
use crate::{Kernel, KernelConfig, ops, recovery};
use aos_store::Store;
use aos_types::{Scb, SyscallError, hook};
use serde_json::json;
use std::sync::Arc;

impl Kernel {
    /// Starts the kernel on an open store: AOSCB, skill index (and watcher),
    /// system-level default services, recovery of every session, then
    /// `aos.started`. `drivers` run skill services (WASM, legacy); `runner`
    /// runs dispatches and compaction summaries (the daemon's is the
    /// ReActUnit of `aos-react`).
    pub async fn start(
        store: Store,
        config: KernelConfig,
        drivers: Vec<Arc<dyn ServiceDriver>>,
        runner: Arc<dyn crate::Runner>,
    ) -> Result<Kernel, SyscallError> {
        let initial = config
            .defaults
            .to_aoscb(&config.system_name, &config.skill_root_string());
        store.aoscb_init(&initial).await.sys()?;
        let kernel = Kernel::new(store, config, drivers, runner);
        crate::event_log::start(&kernel).await;
        if kernel.store().backend() == aos_store::Backend::Postgres {
            crate::dispatch::follow_remote_interrupts(&kernel);
        }
        let indexed = kernel.skills().snapshot().valid_count();
        kernel.emit(
            hook::SKILL_INDEX_REFRESH_AFTER,
            HookScope::default(),
            json!({ "indexedCount": indexed }),
        );
        if kernel.config().watch_skills {
            kernel.watch_skills();
        }
        let system = kernel.store().aoscb_get().await.sys()?;
        let starts = resolve_defaults(&[("system", &system.default_skills)])
            .into_iter()
            .filter(|r| r.start && r.start_from == Some("system"))
            .map(|r| r.name)
            .collect();
        ops::service::reconcile(&kernel, ServiceOwner::System, starts).await;
        recovery::recover_all(&kernel).await?;
        crate::takeover::spawn(&kernel);
        crate::nodes::start(&kernel).await;
        kernel.emit(
            hook::AOS_STARTED,
            HookScope::default(),
            json!({ "cause": "start", "catalogSize": indexed }),
        );
        tracing::info!(node = %kernel.config().node_id, skills = indexed, "kernel started");
        Ok(kernel)
    }

    fn watch_skills(&self) {
        let weak = self.downgrade();
        let watcher = self.skills().watch(move || {
            if let Some(k) = weak.upgrade() {
                // On a blocking thread: no request waits behind a scan.
                tokio::spawn(async move {
                    let index = k.skills().refresh_async().await;
                    tracing::info!(
                        skills = index.valid_count(),
                        "skill roots changed; re-indexed"
                    );
                    k.emit(
                        hook::SKILL_INDEX_REFRESH_AFTER,
                        HookScope::default(),
                        json!({ "indexedCount": index.valid_count(), "cause": "watch" }),
                    );
                });
            }
        });
        match watcher {
            Ok(w) => self.keep_watcher(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch skill roots; use skill.index.refresh")
            }
        }
    }

    /// Interrupts running dispatches (each writes its interrupt fact) and
    /// waits for them up to `grace`.
    pub async fn drain_dispatches(&self, grace: std::time::Duration) {
        crate::dispatch::interrupt_all(self, grace).await;
        for d in self.dispatches().all_running() {
            self.sandbox().release(&d.session_id).await;
        }
    }

    /// Runs `context.assemble` for a session with `trigger` (`rebuild`,
    /// `dispatch`, `incremental`) and caches the result, as the loop does
    /// (with the session it holds: `scb`, read once); returns how many
    /// context messages it holds. For benchmarks and tools.
    pub async fn assemble_context(&self, scb: &Scb, trigger: &str) -> Result<usize, SyscallError> {
        Ok(crate::context::assemble(self, scb, trigger)
            .await?
            .messages
            .len())
    }

    /// The API listens at `url`: recorded ([`Kernel::set_api_url`]) and
    /// written to the node registry at once, not a heartbeat later.
    pub async fn listening(&self, url: &str) {
        self.set_api_url(url);
        crate::nodes::beat(self).await;
    }

    /// Resumes the dispatch inbox after a start: messages this node queued
    /// (`queue: true`) and had not started run now, in order. Call it once
    /// the API is reachable ([`Kernel::set_api_url`]), since their bash needs
    /// it. Returns how many were queued again.
    pub async fn resume_inbox(&self) -> Result<usize, SyscallError> {
        crate::dispatch::resume(self).await
    }

    /// Stops every running service (after the server drained).
    pub async fn stop_services(&self) {
        ops::service::stop_owned(self, |_| true).await;
        crate::nodes::stopped(self).await;
    }

    /// A dispatch's stream for `GET /v1/dispatch/{id}/stream`: the session it
    /// belongs to, the events so far, and the live receiver.
    pub fn dispatch_stream(
        &self,
        dispatch_id: &str,
    ) -> Option<(
        String,
        Vec<crate::StreamEvent>,
        tokio::sync::broadcast::Receiver<crate::StreamEvent>,
    )> {
        crate::dispatch::stream(self, dispatch_id)
    }

    /// [`Kernel::dispatch_stream`] of a dispatch running on another node,
    /// followed through the cluster's event log (PostgreSQL only).
    pub fn remote_dispatch_stream(
        &self,
        dispatch_id: &str,
    ) -> Option<(
        String,
        Vec<crate::StreamEvent>,
        tokio::sync::broadcast::Receiver<crate::StreamEvent>,
    )> {
        crate::dispatch::remote_stream(self, dispatch_id)
    }
}
