//! # etalon-engine
//!
//! The person side of Etalon: IRT probabilities and information, ability estimators (EAP, MAP, ML,
//! WLE), adaptive sessions, exposure control, content balancing, levels and simulation. Pure: no
//! file or network I/O, so it embeds in a server, Python or WebAssembly.
