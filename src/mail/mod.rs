//! Mail delivery: the mailers (SMTP, or the log in development) and the worker that
//! drains the mail queue into the configured mailer.

pub mod log;
pub mod smtp;
pub mod worker;

use crate::ports::MailJob;

use std::time::Duration;

/// The original's wording ("… It is valid for 5 minutes"), kept so users see the mail
/// they know; the validity follows the configured lifetime.
pub fn otp_mail(to: &str, otp: &str, valid_for: Duration) -> MailJob {
    let secs = valid_for.as_secs();
    let validity = match secs {
        1 => "1 second".to_string(),
        60 => "1 minute".to_string(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    };
    MailJob {
        to: to.to_string(),
        subject: "Your otp code".to_string(),
        body: format!("Your OTP is {otp}. It is valid for {validity}"),
        expires_at: Some(crate::domain::now_ms() + valid_for.as_millis() as i64),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn otp_mail_keeps_the_original_wording() {
        let mail = super::otp_mail("a@b.co", "123456", super::Duration::from_secs(300));
        assert_eq!(mail.subject, "Your otp code");
        assert_eq!(mail.body, "Your OTP is 123456. It is valid for 5 minutes");
    }
}
