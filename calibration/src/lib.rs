//! # etalon-calibration
//!
//! The item side of Etalon: marginal maximum likelihood estimation of item parameters by EM
//! (Bock & Aitkin 1981), parallel with rayon, fit statistics and anchored calibration.
