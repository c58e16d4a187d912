//! The worker pool: long-lived, isolated interpreter processes that prove caches against
//! their sources (`check --deep`, `fix`) and compile sources into caches (`fix`,
//! `compile`), over a length-prefixed binary protocol ([`protocol`]) with the embedded
//! `worker.py`. [`pool::Pool`] starts, feeds, times out, restarts and reaps them.

pub mod pool;
pub mod protocol;
