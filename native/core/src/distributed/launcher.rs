//! Where this process stands in a data-parallel job, from the variables its
//! launcher sets: `torchrun` (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
//! MASTER_PORT, and TORCHELASTIC_USE_AGENT_STORE when its agent hosts the
//! rendezvous store) or Slurm's `srun` (SLURM_PROCID, SLURM_LOCALID,
//! SLURM_NTASKS; the master is MASTER_ADDR or the first host of the job's
//! node list, the port MASTER_PORT or 29500). Without them, or with a world
//! of one, there is no job: training runs as a single process, unchanged.

use crate::error::{CoreError, Result};

/// The default rendezvous port (torchrun's).
pub const DEFAULT_PORT: u16 = 29500;

/// Which launcher set the variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// torchrun, or anything that sets RANK/WORLD_SIZE/MASTER_* itself.
    Env,
    /// Slurm's srun.
    Slurm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    /// The rank within its node: the CUDA device this rank uses.
    pub local_rank: usize,
    pub world_size: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent hosts the TCPStore on MASTER_ADDR:MASTER_PORT; every
    /// rank then connects as a client (rank 0 would otherwise host it).
    pub agent_store: bool,
    /// torchrun's restart count: part of the store's key prefix, so a
    /// restarted job never reads the keys of the attempt before.
    pub attempt: u32,
    pub launcher: Launcher,
}

impl Launch {
    /// Whether this process hosts the rendezvous store.
    pub fn hosts_store(&self) -> bool {
        self.rank == 0 && !self.agent_store
    }
}

fn error(var: &str, message: impl std::fmt::Display) -> CoreError {
    CoreError::Distributed(format!("launcher variable {var}: {message}"))
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    what: &str,
) -> Result<Option<T>> {
    match get(var) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| error(var, format!("expected {what}, got \"{v}\""))),
    }
}

fn required<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    what: &str,
    launcher: &str,
) -> Result<T> {
    number(get, var, what)?.ok_or_else(|| error(var, format!("not set ({launcher} sets it)")))
}

/// The job described by the process environment, if any.
pub fn from_env() -> Result<Option<Launch>> {
    from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// The job described by the variables `get` returns (None: unset).
pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>> {
    let port = |default: Option<u16>| -> Result<u16> {
        match number::<u16>(&get, "MASTER_PORT", "a port number in 1..65535")? {
            Some(0) => Err(error("MASTER_PORT", "expected a port in 1..65535, got 0")),
            Some(p) => Ok(p),
            None => default.ok_or_else(|| error("MASTER_PORT", "not set")),
        }
    };
    let launch = if get("WORLD_SIZE").is_some() {
        let world: usize = required(&get, "WORLD_SIZE", "a whole number ≥ 1", "torchrun")?;
        if world <= 1 {
            return check_world(world, "WORLD_SIZE").map(|_| None);
        }
        let rank: usize = required(&get, "RANK", "a whole number", "torchrun")?;
        let local_rank = number(&get, "LOCAL_RANK", "a whole number")?.unwrap_or(0);
        let master_addr = get("MASTER_ADDR").ok_or_else(|| error("MASTER_ADDR", "not set"))?;
        Launch {
            rank,
            local_rank,
            world_size: world,
            master_addr,
            master_port: port(None)?,
            agent_store: get("TORCHELASTIC_USE_AGENT_STORE")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            attempt: number(&get, "TORCHELASTIC_RESTART_COUNT", "a whole number")?.unwrap_or(0),
            launcher: Launcher::Env,
        }
    } else if get("SLURM_PROCID").is_some() && get("SLURM_STEP_ID").is_some() {
        // Only inside an srun step: a batch script itself also has
        // SLURM_PROCID=0 and the job's SLURM_NTASKS, and must not wait for
        // ranks that were never started.
        let world: usize = required(&get, "SLURM_NTASKS", "a whole number ≥ 1", "srun")?;
        if world <= 1 {
            return check_world(world, "SLURM_NTASKS").map(|_| None);
        }
        let rank: usize = required(&get, "SLURM_PROCID", "a whole number", "srun")?;
        let local_rank = number(&get, "SLURM_LOCALID", "a whole number")?.unwrap_or(0);
        let master_addr = match get("MASTER_ADDR") {
            Some(a) => a,
            None => {
                let (var, list) = ["SLURM_JOB_NODELIST", "SLURM_NODELIST"]
                    .iter()
                    .find_map(|v| get(v).map(|l| (*v, l)))
                    .ok_or_else(|| {
                        error(
                            "SLURM_JOB_NODELIST",
                            "not set, nor MASTER_ADDR or SLURM_NODELIST",
                        )
                    })?;
                first_host(&list).map_err(|m| error(var, m))?
            }
        };
        Launch {
            rank,
            local_rank,
            world_size: world,
            master_addr,
            master_port: port(Some(DEFAULT_PORT))?,
            agent_store: false,
            attempt: 0,
            launcher: Launcher::Slurm,
        }
    } else {
        return Ok(None);
    };
    if launch.rank >= launch.world_size {
        let var = match launch.launcher {
            Launcher::Env => "RANK",
            Launcher::Slurm => "SLURM_PROCID",
        };
        return Err(error(
            var,
            format!(
                "rank {} is outside a world of {}",
                launch.rank, launch.world_size
            ),
        ));
    }
    Ok(Some(launch))
}

fn check_world(world: usize, var: &str) -> Result<()> {
    if world == 0 {
        Err(error(var, "expected a whole number ≥ 1, got 0"))
    } else {
        Ok(())
    }
}

/// The first host of a Slurm node list: `node[01-04,07],gpu5` → `node01`,
/// `gpu5,node[1-2]` → `gpu5`, `rack[2-3]-n[08-09]` → `rack2-n08`. Each
/// bracket of the first entry contributes its first number, zero padding
/// kept.
pub fn first_host(list: &str) -> std::result::Result<String, String> {
    let list = list.trim();
    let mut host = String::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            ',' => break,
            '[' => {
                let inner: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let first = inner.split([',', '-']).next().unwrap_or("").trim();
                if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "expected a node list like node[01-04,07],gpu5, got \"{list}\""
                    ));
                }
                host.push_str(first);
            }
            ']' => {
                return Err(format!("unbalanced ']' in node list \"{list}\""));
            }
            c => host.push(c),
        }
    }
    if host.is_empty() {
        return Err(format!("no host in node list \"{list}\""));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn first_hosts_of_slurm_node_lists() {
        assert_eq!(first_host("node[01-04,07],gpu5").unwrap(), "node01");
        assert_eq!(first_host("gpu5,node[1-2]").unwrap(), "gpu5");
        assert_eq!(first_host("node[7,3-4]").unwrap(), "node7");
        assert_eq!(first_host("rack[2-3]-n[008-009]").unwrap(), "rack2-n008");
        assert_eq!(first_host("single").unwrap(), "single");
        assert_eq!(first_host(" a1 ").unwrap(), "a1");
        for bad in ["", "node[]", "node[a-b]", "x]", ",node1"] {
            assert!(first_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn torchrun_variables() {
        let l = from_vars(vars(&[
            ("RANK", "1"),
            ("LOCAL_RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            l,
            Launch {
                rank: 1,
                local_rank: 1,
                world_size: 2,
                master_addr: "127.0.0.1".into(),
                master_port: 29400,
                agent_store: true,
                attempt: 3,
                launcher: Launcher::Env,
            }
        );
        assert!(!l.hosts_store());
    }

    #[test]
    fn slurm_variables_map_to_ranks_and_the_first_node() {
        let l = from_vars(vars(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_JOB_NODELIST", "gpu[03-06]"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.local_rank, l.world_size), (5, 1, 8));
        assert_eq!((l.master_addr.as_str(), l.master_port), ("gpu03", 29500));
        assert_eq!(l.launcher, Launcher::Slurm);
        // Rank 0 hosts the store when no agent does.
        let l0 = from_vars(vars(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_STEP_ID", "0"),
            ("SLURM_NODELIST", "a,b"),
            ("MASTER_PORT", "12345"),
        ]))
        .unwrap()
        .unwrap();
        assert!(l0.hosts_store());
        assert_eq!((l0.master_addr.as_str(), l0.master_port), ("a", 12345));
    }

    #[test]
    fn no_job_without_variables_a_world_of_one_or_outside_srun() {
        assert_eq!(from_vars(vars(&[])).unwrap(), None);
        let one = [("WORLD_SIZE", "1"), ("RANK", "0")];
        assert_eq!(from_vars(vars(&one)).unwrap(), None);
        // A batch script (no step): not a job of many ranks.
        let batch = [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")];
        assert_eq!(from_vars(vars(&batch)).unwrap(), None);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = |pairs: &[(&str, &str)]| from_vars(vars(pairs)).unwrap_err().to_string();
        let base = [
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ];
        assert!(e(&base).contains("RANK: not set"), "{}", e(&base));
        let mut v = base.to_vec();
        v.push(("RANK", "2"));
        assert!(e(&v).contains("RANK: rank 2 is outside a world of 2"));
        let v = [("WORLD_SIZE", "two")];
        assert!(e(&v).contains("WORLD_SIZE: expected a whole number"));
        let v = [("WORLD_SIZE", "0")];
        assert!(e(&v).contains("WORLD_SIZE: expected a whole number ≥ 1, got 0"));
        let v = [
            ("WORLD_SIZE", "2"),
            ("RANK", "0"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "99999"),
        ];
        assert!(e(&v).contains("MASTER_PORT: expected a port"));
        let v = [
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_STEP_ID", "1"),
        ];
        assert!(e(&v).contains("SLURM_JOB_NODELIST: not set"));
    }
}
