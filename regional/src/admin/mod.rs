//! Tenant data served to regional admins (and to the edge, which forwards admin routes
//! to the tenant's home region): today the usage report.

pub mod usage;
