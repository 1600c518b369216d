//! The Sessions and CDRs modules, sender side: transactions of eMSPs'
//! tokens become OCPI Sessions and, once ended, CDRs; both are pushed to
//! the eMSP and can be pulled by it.

pub mod authorizations;
pub mod pull;
pub mod tracker;
pub mod view;
