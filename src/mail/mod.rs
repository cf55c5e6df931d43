//! Mail delivery: the mailers (SMTP, or the log in development) and the worker that
//! drains the mail queue into the configured mailer.

pub mod log;
pub mod smtp;
pub mod worker;

use crate::ports::MailJob;

/// The original's wording, kept so users see the mail they know.
pub fn otp_mail(to: &str, otp: &str) -> MailJob {
    MailJob {
        to: to.to_string(),
        subject: "Your otp code".to_string(),
        body: format!("Your OTP is {otp}. It is valid for 5 minutes"),
    }
}
