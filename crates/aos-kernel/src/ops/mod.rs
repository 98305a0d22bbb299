//! One module per syscall domain; [`route`] maps an op name to its handler.

pub(crate) mod agent;
mod content;
mod history;
mod kv;
mod log;
pub(crate) mod service;
pub(crate) mod session;
mod skill;
mod system;

use crate::Principal;
use crate::kernel::{Kernel, OpResult};
use aos_types::{ErrorCode, SyscallError};
use serde_json::{Map, Value};

/// Dispatches a known op to its handler.
pub(crate) async fn route(
    k: &Kernel,
    p: &Principal,
    op: &str,
    params: Map<String, Value>,
) -> OpResult {
    match op {
        "system.get" => system::get(k, params).await,
        "system.health" => system::health(k, params).await,
        "system.nodes" => system::nodes(k, params).await,
        "system.update" => system::update(k, params).await,
        "kv.get" => kv::get(k, p, params).await,
        "kv.list" => kv::list(k, p, params).await,
        "kv.put" => kv::put(k, p, params).await,
        "kv.delete" => kv::delete(k, p, params).await,
        "agent.create" => agent::create(k, p, params).await,
        "agent.get" => agent::get(k, params).await,
        "agent.list" => agent::list(k, p, params).await,
        "agent.update" => agent::update(k, params).await,
        "agent.archive" => agent::archive(k, params).await,
        "session.create" => session::create(k, p, params).await,
        "session.get" => session::get(k, params).await,
        "session.list" => session::list(k, p, params).await,
        "session.update" => session::update(k, params).await,
        "session.archive" => session::archive(k, params).await,
        "session.append" => session::append(k, p, params).await,
        "session.context.get" => session::context_get(k, params).await,
        "session.context.rebuild" => session::context_rebuild(k, params).await,
        "session.history.list" => history::list(k, params).await,
        "session.history.get" => history::get(k, params).await,
        "skill.list" => skill::list(k, params).await,
        "skill.get" => skill::get(k, params).await,
        "skill.load" => skill::load(k, params).await,
        "skill.unload" => skill::unload(k, params).await,
        "skill.index.refresh" => skill::index_refresh(k, params).await,
        "skill.catalog.refresh" => skill::catalog(k, params, true).await,
        "skill.catalog.preview" => skill::catalog(k, params, false).await,
        "skill.default.resolve" => skill::default_resolve(k, params).await,
        "content.put" => content::put(k, params).await,
        "content.read" => content::read(k, params).await,
        "content.search" => content::search(k, params).await,
        "runtime.log.list" => log::list(k, params).await,
        "service.list" => service::list(k, p, params).await,
        "service.get" => service::get(k, params).await,
        "skill.start" => service::start(k, params).await,
        "skill.stop" => service::stop(k, params).await,
        "skill.restart" => service::restart_one(k, params).await,
        "skill.invoke" => service::invoke(k, p, params).await,
        aos_types::CALLER_OP => Err(SyscallError::invalid(format!(
            "{op} is answered to a service while one of its commands runs"
        ))),
        "session.dispatch" => crate::dispatch::dispatch(k, p, params).await,
        "session.wait" => crate::dispatch::wait(k, params).await,
        "session.interrupt" => crate::dispatch::interrupt(k, params).await,
        "session.compact" => crate::dispatch::compact(k, p, params).await,
        "session.context.fold" => crate::context::fold(k, params, true).await,
        "session.context.unfold" => crate::context::fold(k, params, false).await,
        _ => Err(SyscallError::new(
            ErrorCode::OpUnknown,
            format!("unknown syscall {op:?}"),
        )),
    }
}
