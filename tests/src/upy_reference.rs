//! The reference comparison (issue 7), written once for every board that takes part: the
//! scripts of `tests/upy/reference` and the misuse catalogue, each with its arguments and Linux
//! peer ([`CASES`]), and the reference run that says what a board must print: the pinned
//! MicroPython's own executable (`.venv/bin/micropython`, unix port, POSIX sockets) in a "board"
//! namespace at 10.0.2.15, cabled by a veth pair to a "peer" namespace at 10.0.2.2 where the
//! peer runs and dnsmasq answers for `peer.k230.sim` ([`Reference`]). A board runs a case with
//! flavour `lwip` against the same peer in its own namespace; [`Case::judge`] compares.
//!
//! The unix port differs from modlwip in a few places; only those lines are normalised, each
//! with the reason next to it ([`Case::normalise`]).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use k230_testkit::netns::{dnsmasq, unique_name, Guarded, Netns};

use crate::upy_peers::{self as peers, Outcome, PeerFn, BOARD_IP, LIMIT, PEER_IP, UNKNOWN_NAME};
use crate::workspace_root;

/// How a board's output is held against the reference's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Every line the same.
    All,
    /// The last line the same: the script checks itself against expectations that differ per
    /// flavour, and its last line says how that went.
    Summary,
}

/// One script, run on a board and on the reference.
pub struct Case {
    /// Its path under `tests/upy/`.
    pub script: &'static str,
    /// The script's arguments for a flavour ("lwip" a board, "unix" the reference).
    pub args: fn(&str) -> Vec<String>,
    /// The Linux peer's part; its summary must be the same for both runs.
    pub peer: Option<PeerFn>,
    /// What of the two outputs must be equal.
    pub compare: Compare,
    /// `(reference text, replacement)`: unix-port-only behaviour, each with its reason.
    pub normalise: &'static [(&'static str, &'static str)],
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The cases, each on its own ports.
pub const CASES: &[Case] = &[
    Case {
        script: "reference/tcp_client.py",
        args: |_| strings(&["10.0.2.2", "7701"]),
        peer: Some(|ctx| peers::echo(ctx, 7701)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/tcp_server.py",
        args: |_| strings(&["7702"]),
        peer: Some(|ctx| peers::request_reply(ctx, 7702)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/udp.py",
        args: |_| strings(&["10.0.2.2", "7703"]),
        peer: Some(|ctx| peers::udp_echo(ctx, 7703)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/timeouts.py",
        args: |_| strings(&["10.0.2.2", "7704"]),
        peer: Some(|ctx| peers::mute(ctx, 7704)),
        compare: Compare::All,
        // The unix port reports an expired SO_RCVTIMEO as the kernel's EAGAIN; modlwip raises
        // ETIMEDOUT (110) when a timeout expires.
        normalise: &[
            (
                "udp recvfrom timeout OSError 11",
                "udp recvfrom timeout OSError 110",
            ),
            ("recv timeout OSError 11", "recv timeout OSError 110"),
        ],
    },
    Case {
        script: "reference/stream.py",
        args: |_| strings(&["10.0.2.2", "7705"]),
        peer: Some(|ctx| peers::lines(ctx, 7705)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/poll.py",
        args: |_| strings(&["7706"]),
        peer: Some(|ctx| peers::poll_partner(ctx, 7706)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/asyncio_server.py",
        args: |_| strings(&["7707", "3"]),
        peer: Some(|ctx| peers::async_clients(ctx, 7707, 3)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/asyncio_client.py",
        args: |_| strings(&["10.0.2.2", "7710"]),
        peer: Some(|ctx| peers::echo(ctx, 7710)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/getaddrinfo.py",
        args: |_| strings(&[peers::PEER_NAME, "10.0.2.2", UNKNOWN_NAME]),
        peer: None,
        compare: Compare::All,
        // The unix port raises getaddrinfo failures as OSError("[addrinfo error N]"); modlwip
        // raises OSError(N) with lwIP's code.
        normalise: &[("OSError [addrinfo error -2]", "OSError -2")],
    },
    Case {
        script: "reference/tcp_reset.py",
        args: |_| strings(&["7711"]),
        peer: Some(|ctx| peers::send_then_reset(ctx, 7711)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/recv_flags.py",
        args: |_| strings(&["10.0.2.2", "7714", "7715", "7716"]),
        peer: Some(|ctx| peers::flags_partner(ctx, 7714, 7715)),
        compare: Compare::All,
        normalise: &[],
    },
    Case {
        script: "reference/loopback.py",
        args: |_| strings(&["10.0.2.15", "10.0.2.2", "7720"]),
        peer: None,
        compare: Compare::All,
        // modlwip reports a refused connection as lwIP's ERR_RST, ECONNRESET (104); ours and
        // Linux say ECONNREFUSED (111), upy-socket's documented deviation. Nothing differs.
        normalise: &[],
    },
    Case {
        script: "misuse.py",
        args: |flavour| {
            vec![
                flavour.to_owned(),
                "10.0.2.2".to_owned(),
                "7708".to_owned(),
                "7709".to_owned(),
                UNKNOWN_NAME.to_owned(),
            ]
        },
        peer: Some(|ctx| peers::backlog_only(ctx, 7708)),
        compare: Compare::Summary,
        normalise: &[],
    },
];

impl Case {
    /// The script's path.
    pub fn path(&self) -> PathBuf {
        workspace_root().join("tests/upy").join(self.script)
    }

    /// Runs the script with `run` (which returns whether it ended well and its output) while
    /// the case's peer runs in `ns`.
    pub fn run_against_peer(
        &self,
        ns: &Netns,
        run: impl FnOnce() -> (Result<(), String>, String),
    ) -> Outcome {
        peers::run_with(ns, self.peer, run)
    }

    /// What is wrong with a board's run `ours` against the reference's `theirs` (nothing: empty),
    /// and the reference's output normalised.
    pub fn judge(&self, ours: &Outcome, theirs: &Outcome) -> (Vec<String>, String) {
        let mut problems = Vec::new();
        // A rule that matches nothing documents a difference that does not exist.
        for (from, _) in self.normalise {
            if !theirs.out.contains(from) {
                problems.push(format!("normalisation {from:?} matched nothing"));
            }
        }
        let normalised = self
            .normalise
            .iter()
            .fold(theirs.out.clone(), |t, (from, to)| t.replace(from, to));
        if let Err(e) = &ours.result {
            problems.push(format!("ours failed: {e}"));
        }
        if let Err(e) = &theirs.result {
            problems.push(format!("reference failed: {e}"));
        }
        let same = match self.compare {
            Compare::All => ours.out == normalised,
            Compare::Summary => ours.out.lines().last() == normalised.lines().last(),
        };
        if !same {
            problems.push("outputs differ".to_owned());
        }
        if ours.peer != theirs.peer {
            problems.push(format!("peer saw {:?} vs {:?}", ours.peer, theirs.peer));
        }
        (problems, normalised)
    }
}

/// /etc/netns/<namespace>/resolv.conf, removed on drop (with /etc/netns if this made it).
struct Resolver {
    dir: PathBuf,
    made_parent: bool,
}

impl Resolver {
    fn new(ns: &Netns, server: Ipv4Addr) -> Self {
        let parent = Path::new("/etc/netns");
        let made_parent = !parent.exists();
        let dir = parent.join(ns.name());
        std::fs::create_dir_all(&dir).expect("resolver dir");
        let resolver = Self { dir, made_parent };
        std::fs::write(
            resolver.dir.join("resolv.conf"),
            format!("nameserver {server}\n"),
        )
        .expect("resolv.conf");
        resolver
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup {}: {e}", self.dir.display());
        }
        if self.made_parent {
            // Fails harmlessly if someone else put a namespace's files there meanwhile.
            let _ = std::fs::remove_dir(Path::new("/etc/netns"));
        }
    }
}

/// The pinned MicroPython's executable, in the project's `.venv`.
pub fn micropython() -> PathBuf {
    workspace_root().join(".venv/bin/micropython")
}

/// The reference: MicroPython's executable in `board`, a veth pair to `peer` (the board's
/// resolver pointed at dnsmasq there with /etc/netns/<board>/resolv.conf, which `ip netns exec`
/// mounts). Needs root and [`micropython`].
pub struct Reference {
    _resolver: Resolver,
    _dnsmasq: Guarded,
    peer: Netns,
    board: Netns,
}

impl Reference {
    /// Makes the two namespaces, the cable and the peer's dnsmasq.
    pub fn start() -> Self {
        let board = Netns::new().expect("board netns");
        let peer = Netns::new().expect("peer netns");
        let (vb, vp) = (unique_name("k230vb"), unique_name("k230vp"));
        board
            .exec_ok(&[
                "ip",
                "link",
                "add",
                &vb,
                "type",
                "veth",
                "peer",
                "name",
                &vp,
                "netns",
                peer.name(),
            ])
            .expect("veth");
        board
            .exec_ok(&["ip", "addr", "add", &format!("{BOARD_IP}/24"), "dev", &vb])
            .expect("board address");
        board
            .exec_ok(&["ip", "link", "set", &vb, "up"])
            .expect("board link");
        peer.exec_ok(&["ip", "addr", "add", &format!("{PEER_IP}/24"), "dev", &vp])
            .expect("peer address");
        peer.exec_ok(&["ip", "link", "set", &vp, "up"])
            .expect("peer link");
        let args = peers::dns_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dnsmasq = dnsmasq(&peer, &vp, &args).expect("dnsmasq");
        let resolver = Resolver::new(&board, PEER_IP);
        Self {
            _resolver: resolver,
            _dnsmasq: dnsmasq,
            peer,
            board,
        }
    }

    /// Runs `case` (flavour `unix`) against its peer.
    pub fn run(&self, case: &Case) -> Outcome {
        case.run_against_peer(&self.peer, || {
            let mut child = Command::new("ip")
                .args(["netns", "exec", self.board.name()])
                .arg(micropython())
                .arg(case.path())
                .args((case.args)("unix"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("micropython");
            let start = Instant::now();
            let status = loop {
                match child.try_wait().expect("wait") {
                    Some(status) => break Some(status),
                    None if start.elapsed() > LIMIT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    None => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            };
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                stdout.read_to_string(&mut out).ok();
            }
            if let Some(mut stderr) = child.stderr.take() {
                stderr.read_to_string(&mut err).ok();
            }
            let result = match status {
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(format!("{s}: {err}")),
                None => Err(format!("timed out: {err}")),
            };
            (result, out)
        })
    }
}
