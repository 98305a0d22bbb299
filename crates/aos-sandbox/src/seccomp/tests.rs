//! The filter run by a BPF interpreter on every call number and a grid of
//! arguments, against the rules written out plainly.

use super::*;

/// Runs `prog` on (`arch`, `nr`, `args`) as the kernel would.
fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    steps(prog, arch, nr, args).0
}

/// The result and the number of instructions run.
fn steps(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let word = |offset: u32| -> u32 {
        match offset {
            NR => nr,
            ARCH => arch,
            o if (16..64).contains(&o) && o % 8 == 0 => args[((o - 16) / 8) as usize] as u32,
            o => panic!("load at offset {o}"),
        }
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0);
    loop {
        steps += 1;
        assert!(steps < 100, "no loop in a classic BPF program");
        let i = prog[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match i.code {
            LD_ABS => acc = word(i.k),
            AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K => pc += jump(acc == i.k),
            JGE_K => pc += jump(acc >= i.k),
            JSET_K => pc += jump(acc & i.k != 0),
            RET_K => return (i.k, steps),
            c => panic!("opcode {c:#x}"),
        }
    }
}

/// The rules, written out plainly.
fn expected(nr: u32, args: [u64; 6], allow_udp: bool, allow_unix: bool) -> u32 {
    let eperm = ret_errno(libc::EPERM);
    let nr_l = libc::c_long::from(nr);
    if nr >= X32_BIT {
        return ret_errno(libc::ENOSYS);
    }
    if DENIED.contains(&nr_l) {
        return eperm;
    }
    if nr_l == libc::SYS_clone3 {
        return ret_errno(libc::ENOSYS);
    }
    if nr_l == libc::SYS_clone {
        return if args[0] as u32 & NAMESPACE_FLAGS != 0 {
            eperm
        } else {
            RET_ALLOW
        };
    }
    if nr_l != libc::SYS_socket {
        return RET_ALLOW;
    }
    let (domain, ty, proto) = (args[0] as i32, args[1] as i32 & 0xf, args[2] as i32);
    let allowed = match domain {
        libc::AF_UNIX => allow_unix,
        libc::AF_NETLINK => proto == libc::NETLINK_ROUTE,
        libc::AF_INET | libc::AF_INET6 => match ty {
            libc::SOCK_STREAM => proto == 0 || proto == libc::IPPROTO_TCP,
            libc::SOCK_DGRAM => allow_udp,
            _ => false,
        },
        _ => false,
    };
    if allowed { RET_ALLOW } else { eperm }
}

fn socket_args() -> Vec<[u64; 6]> {
    let domains = [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        libc::AF_PACKET,
        libc::AF_VSOCK,
        libc::AF_BLUETOOTH,
    ];
    let types = [
        1,
        2,
        3,
        4,
        5,
        6,
        10,
        1 | libc::SOCK_CLOEXEC,
        2 | libc::SOCK_NONBLOCK,
    ];
    let protos = [
        0,
        libc::IPPROTO_TCP,
        libc::IPPROTO_UDP,
        libc::IPPROTO_MPTCP,
        libc::IPPROTO_SCTP,
        libc::NETLINK_ROUTE,
        libc::NETLINK_AUDIT,
    ];
    let mut all = Vec::new();
    for d in domains {
        for t in types {
            for p in protos {
                all.push([d as u64, t as u64, p as u64, 0, 0, 0]);
            }
        }
    }
    all
}

#[test]
fn every_call_and_argument_gets_the_rules_decision() {
    let clone_args = [
        0,
        libc::SIGCHLD as u64,
        libc::CLONE_NEWUSER as u64,
        libc::CLONE_NEWNET as u64 | 0x11,
    ]
    .map(|f| [f, 0, 0, 0, 0, 0]);
    for (udp, unix) in [(false, false), (false, true), (true, false), (true, true)] {
        let f = filter(udp, unix).expect("filter");
        let prog = f.instructions();
        let mut cases: Vec<(u32, [u64; 6])> = (0..600).map(|nr| (nr, [0; 6])).collect();
        cases.extend([X32_BIT, X32_BIT + 101].map(|nr| (nr, [0; 6])));
        cases.extend(clone_args.map(|a| (libc::SYS_clone as u32, a)));
        cases.extend(
            socket_args()
                .into_iter()
                .map(|a| (libc::SYS_socket as u32, a)),
        );
        for (nr, args) in cases {
            assert_eq!(
                run(prog, AUDIT_ARCH, nr, args),
                expected(nr, args, udp, unix),
                "call {nr} args {args:?} (udp {udp}, unix {unix})"
            );
        }
    }
}

#[test]
fn another_architecture_is_killed() {
    let f = filter(false, false).expect("filter");
    // i386 (int 0x80 on x86_64) and arm (compat on aarch64).
    for arch in [0x4000_0003, 0x4000_0028] {
        assert_eq!(run(f.instructions(), arch, 0, [0; 6]), RET_KILL_PROCESS);
    }
}

#[test]
fn an_ordinary_call_takes_a_short_path() {
    // The kernel runs the filter for every call number when it is attached
    // (the action cache): the path a call takes is what that costs.
    let f = filter(false, false).expect("filter");
    let longest = (0..600)
        .map(|nr| steps(f.instructions(), AUDIT_ARCH, nr, [0; 6]).1)
        .max()
        .unwrap_or(0);
    assert!(
        longest <= 24,
        "longest path {longest} of {} instructions",
        f.instructions().len()
    );
}
