//! Name lookups for the hosts `capabilities.net` names, and no other: the
//! `wasi:sockets/ip-name-lookup` import shadowed by one that checks the
//! name before wasmtime-wasi resolves it. Any other name fails at once, so
//! a guest cannot carry data out in DNS queries.

use crate::state::HostState;
use std::collections::HashSet;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi_io::poll::DynPollable;

/// The sockets view of an instance and the names it may resolve.
pub(crate) struct Lookups<'a> {
    sockets: WasiSocketsCtxView<'a>,
    names: &'a HashSet<String>,
}

struct LookupsData;

impl HasData for LookupsData {
    type Data<'a> = Lookups<'a>;
}

// The lookup interface needs the network interface's traits: delegated.
impl network::Host for Lookups<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.sockets.convert_error_code(error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.sockets.network_error_code(err)
    }
}

impl network::HostNetwork for Lookups<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}

impl Host for Lookups<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let host = name.trim_end_matches('.').to_ascii_lowercase();
        if !self.names.contains(&host) && host.parse::<std::net::IpAddr>().is_err() {
            return Err(ErrorCode::PermanentResolverFailure.into());
        }
        self.sockets.resolve_addresses(network, name)
    }
}

impl HostResolveAddressStream for Lookups<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        self.sockets.resolve_next_address(stream)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.sockets.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

/// Replaces the name-lookup import `wasmtime_wasi` added to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = ip_name_lookup::add_to_linker::<HostState, LookupsData>(linker, |s| Lookups {
        sockets: WasiSocketsCtxView {
            ctx: s.wasi.sockets(),
            table: &mut s.table,
        },
        names: &s.net_names,
    });
    linker.allow_shadowing(false);
    added
}

/// The host names among `capabilities.net` entries, lower-cased.
pub(crate) fn declared(entries: &[String]) -> Arc<HashSet<String>> {
    Arc::new(
        entries
            .iter()
            .filter_map(|e| aos_manifest::net_entry(e))
            .filter_map(|(_, host_port)| host_port.rsplit_once(':').map(|(h, _)| h))
            .filter(|h| h.parse::<std::net::IpAddr>().is_err())
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    )
}
