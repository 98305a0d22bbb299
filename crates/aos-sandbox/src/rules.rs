//! The Landlock ruleset of a [`Policy`]: which file hierarchies a command
//! reads, runs and writes, which TCP (and, from ABI 10, UDP) ports it
//! reaches, and the scoping that keeps its signals and abstract sockets
//! inside its own domain.

use crate::policy::{Network, Policy, WRITABLE_DEVICES};
use crate::{SandboxError, UDP_ABI};
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};
use std::path::Path;

/// The crate's ABI for a kernel's version (the newest both know).
fn abi_of(v: i32) -> ABI {
    match v {
        ..=5 => ABI::V5,
        6 => ABI::V6,
        7 => ABI::V7,
        8 => ABI::V8,
        9 => ABI::V9,
        _ => ABI::V10,
    }
}

fn err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("landlock: {e}"))
}

/// Adds a rule for `path` (skipped when missing), limited to the rights a
/// file may carry when it is not a directory.
fn beneath(
    ruleset: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    abi: ABI,
) -> Result<RulesetCreated, SandboxError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(ruleset);
    };
    let access = if meta.is_dir() {
        access
    } else {
        access & AccessFs::from_file(abi)
    };
    let fd = PathFd::new(path).map_err(err)?;
    ruleset.add_rule(PathBeneath::new(fd, access)).map_err(err)
}

/// Builds the ruleset (in the parent; the child only enforces it).
pub(crate) fn ruleset(policy: &Policy, kernel_abi: i32) -> Result<RulesetCreated, SandboxError> {
    let abi = abi_of(kernel_abi);
    let mut base = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?;
    let ports = policy.tcp_ports();
    let udp = kernel_abi >= UDP_ABI;
    if ports.is_some() {
        base = base.handle_access(AccessNet::from_all(abi)).map_err(err)?;
    }
    let mut r = base.create().map_err(err)?;
    let read = AccessFs::from_read(abi);
    for p in policy.read_exec.iter().chain(&policy.read_only) {
        r = beneath(r, p, read, abi)?;
    }
    for dev in WRITABLE_DEVICES {
        r = beneath(r, Path::new(dev), AccessFs::from_all(abi), abi)?;
    }
    for p in &policy.read_write {
        r = beneath(r, p, AccessFs::from_all(abi), abi)?;
    }
    let Some(ports) = ports else {
        return Ok(r);
    };
    let mut granted = BitFlags::from(AccessNet::ConnectTcp) | AccessNet::BindTcp;
    if udp {
        granted |= AccessNet::from_all(abi) & !(AccessNet::ConnectTcp | AccessNet::BindTcp);
    }
    for port in ports {
        let access = if Some(port) == policy.api_port
            && !matches!(&policy.network, Network::Ports(p) if p.contains(&port))
        {
            BitFlags::from(AccessNet::ConnectTcp)
        } else {
            granted
        };
        r = r.add_rule(NetPort::new(port, access)).map_err(err)?;
    }
    Ok(r)
}
