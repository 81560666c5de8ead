//! Real-world-shaped returned mail, built in the tests: RFC 3464 reports as Postfix, Gmail,
//! Outlook/Exchange and Exim send them, the plain-text formats of Exim, qmail and Yahoo,
//! delays, delivery notices, auto-replies, unsubscribe mails, forged and malformed input.

/// The headers of one of our messages, as a bounce quotes them.
pub fn original_headers(to: &str, message_id: &str) -> String {
    format!(
        "Return-Path: <news@acme.test>\r\nReceived: from mx.acme.test (mx.acme.test [192.0.2.10])\r\n\tby mx.example.com (Postfix) with ESMTPS id 4Zx1\r\n\tfor <{to}>; Tue, 24 Nov 2026 10:00:00 +0000 (UTC)\r\nFrom: News <news@acme.test>\r\nTo: {to}\r\nSubject: Spring news\r\nMessage-ID: {message_id}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nList-Unsubscribe: <mailto:news+unsubscribe-u1-00112233445566778899@acme.test?subject=unsubscribe>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )
}

/// Postfix: multipart/report, delivery-status, text/rfc822-headers.
pub fn postfix_dsn(to: &str, message_id: Option<&str>, status: &str, diag: &str) -> String {
    let action = if status.starts_with('4') {
        "delayed"
    } else {
        "failed"
    };
    let quoted = match message_id {
        Some(id) => format!(
            "--B1.postfix\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n{}\r\n",
            original_headers(to, id)
        ),
        None => String::new(),
    };
    format!(
        "Return-Path: <>\r\nDelivered-To: news@acme.test\r\nDate: Tue, 24 Nov 2026 10:00:05 +0000 (UTC)\r\nFrom: MAILER-DAEMON@mx.acme.test (Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\nTo: news@acme.test\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1.postfix\"\r\nMessage-Id: <20261124100005.AB12@mx.acme.test>\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--B1.postfix\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host mx.acme.test.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<{to}>: host mx.example.com[198.51.100.7] said: {diag}\r\n\r\n--B1.postfix\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\nX-Postfix-Queue-ID: AB12\r\nArrival-Date: Tue, 24 Nov 2026 10:00:00 +0000 (UTC)\r\n\r\nFinal-Recipient: rfc822; {to}\r\nOriginal-Recipient: rfc822;{to}\r\nAction: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.com\r\nDiagnostic-Code: smtp; {diag}\r\n\r\n{quoted}--B1.postfix--\r\n"
    )
}

/// Gmail: multipart/report with the whole original as message/rfc822, human part in
/// multipart/alternative.
pub fn gmail_dsn(to: &str, message_id: &str) -> String {
    format!(
        "Delivered-To: news@acme.test\r\nReturn-Path: <>\r\nFrom: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: news@acme.test\r\nAuto-Submitted: auto-replied\r\nSubject: Delivery Status Notification (Failure)\r\nMessage-ID: <6543.gmail@mx.google.com>\r\nDate: Tue, 24 Nov 2026 02:00:06 -0800 (PST)\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; boundary=\"000000000000gmail\"; report-type=delivery-status\r\n\r\n--000000000000gmail\r\nContent-Type: multipart/related; boundary=\"000000000000rel\"\r\n\r\n--000000000000rel\r\nContent-Type: multipart/alternative; boundary=\"000000000000alt\"\r\n\r\n--000000000000alt\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\n\r\n** Address not found **\r\n\r\nYour message wasn't delivered to {to} because the address couldn't be found, or is unable to receive mail.\r\n\r\nThe response from the remote server was:\r\n550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser\r\n\r\n--000000000000alt\r\nContent-Type: text/html; charset=\"UTF-8\"\r\n\r\n<html><body><h1>Address not found</h1></body></html>\r\n--000000000000alt--\r\n--000000000000rel--\r\n--000000000000gmail\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; googlemail.com\r\nReceived-From-MTA: dns; news@acme.test\r\nArrival-Date: Tue, 24 Nov 2026 02:00:05 -0800 (PST)\r\nX-Original-Message-ID: {message_id}\r\n\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0::1b, the server for the domain example.com.)\r\nDiagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.\r\n Please try double-checking the recipient's email address for typos or\r\n unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser\r\nLast-Attempt-Date: Tue, 24 Nov 2026 02:00:06 -0800 (PST)\r\n\r\n--000000000000gmail\r\nContent-Type: message/rfc822\r\n\r\n{}\r\nHello from Acme.\r\n\r\n--000000000000gmail--\r\n",
        original_headers(to, message_id)
    )
}

/// Outlook / Exchange Online: "Undeliverable:", text/rfc822-headers, RESOLVER codes.
pub fn outlook_dsn(to: &str, message_id: &str) -> String {
    format!(
        "From: Microsoft Outlook <postmaster@outlook.com>\r\nTo: <news@acme.test>\r\nDate: Tue, 24 Nov 2026 10:00:07 +0000\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"b_exch\"\r\nMIME-Version: 1.0\r\nSubject: Undeliverable: Spring news\r\nMessage-ID: <exch.1@outlook.com>\r\nAuto-Submitted: auto-replied\r\nX-MS-Exchange-Message-Is-Ndr:\r\n\r\n--b_exch\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\nYour message to {to} couldn't be delivered.\r\n{to} wasn't found at example.com.\r\n\r\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\r\n\r\n--b_exch\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com\r\nReceived-From-MTA: dns;mx.acme.test\r\nArrival-Date: Tue, 24 Nov 2026 10:00:06 +0000\r\n\r\nFinal-Recipient: rfc822;{to}\r\nAction: failed\r\nStatus: 5.1.10\r\nDiagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n\r\n--b_exch\r\nContent-Type: text/rfc822-headers\r\n\r\n{}\r\n--b_exch--\r\n",
        original_headers(to, message_id)
    )
}

/// Exim's classic plain-text bounce, quoting the original below a marker.
pub fn exim_text(to: &str, message_id: &str) -> String {
    format!(
        "Return-path: <>\r\nFrom: Mail Delivery System <Mailer-Daemon@mx.acme.test>\r\nTo: news@acme.test\r\nSubject: Mail delivery failed: returning message to sender\r\nMessage-Id: <E1exim-0001@mx.acme.test>\r\nDate: Tue, 24 Nov 2026 10:00:08 +0000\r\nX-Failed-Recipients: {to}\r\nAuto-Submitted: auto-replied\r\n\r\nThis message was created automatically by mail delivery software.\r\n\r\nA message that you sent could not be delivered to one or more of its\r\nrecipients. This is a permanent error. The following address(es) failed:\r\n\r\n  {to}\r\n    host mx.example.com [198.51.100.7]\r\n    SMTP error from remote mail server after RCPT TO:<{to}>:\r\n    550 5.1.1 <{to}>: Recipient address rejected: User unknown in virtual mailbox table\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\n\r\n{}\r\nHello from Acme.\r\n",
        original_headers(to, message_id)
    )
}

/// qmail / Yahoo: no status codes but "permanent error"; quoted original.
pub fn qmail_text(to: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mta1001.mail.example.net\r\nTo: news@acme.test\r\nSubject: failure notice\r\nDate: 24 Nov 2026 10:00:09 -0000\r\nMessage-ID: <q.1@mta1001>\r\n\r\nHi. This is the qmail-send program at mta1001.mail.example.net.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<{to}>:\r\n554: delivery error: dd This user doesn't have an account - mta1001\r\n\r\n--- Below this line is a copy of the message.\r\n\r\n{}\r\nHello\r\n",
        original_headers(to, message_id)
    )
}

/// A non-standard bounce that quotes nothing: matched by recipient and recent batch only.
pub fn bare_text_bounce(to: &str, code: &str) -> String {
    format!(
        "From: postmaster@example.com\r\nTo: news@acme.test\r\nSubject: Delivery failure\r\nDate: Tue, 24 Nov 2026 10:00:10 +0000\r\nMessage-ID: <bare.{code}.{to}>\r\n\r\nDelivery to the following recipient failed:\r\n\r\n    {to}\r\n\r\nReason: {code} mailbox temporarily unavailable, will retry\r\n"
    )
}

/// A DSN saying the message was delivered (RFC 3464 NOTIFY=SUCCESS).
pub fn delivered_notice(to: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.acme.test (Mail Delivery System)\r\nTo: news@acme.test\r\nSubject: Successful Mail Delivery Report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"ok\"\r\n\r\n--ok\r\nContent-Type: text/plain\r\n\r\nYour message was successfully delivered.\r\n\r\n--ok\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\n\r\nFinal-Recipient: rfc822; {to}\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n--ok--\r\n"
    )
}

/// Vacation replies: RFC 3834, Outlook, a vendor header.
pub fn auto_replies(from: &str) -> Vec<String> {
    vec![
        format!(
            "From: {from}\r\nTo: news@acme.test\r\nSubject: Re: Spring news\r\nAuto-Submitted: auto-replied (vacation)\r\nDate: Tue, 24 Nov 2026 10:00:11 +0000\r\n\r\nI am away until Monday. 550 people will reply later.\r\n"
        ),
        format!(
            "From: {from}\r\nTo: news@acme.test\r\nSubject: Automatic reply: Spring news\r\nX-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: {from}\r\n\r\nOut of office.\r\n"
        ),
        format!(
            "From: {from}\r\nTo: news@acme.test\r\nSubject: Spring news\r\nX-Autoreply: yes\r\nPrecedence: auto_reply\r\n\r\nThanks for your mail.\r\n"
        ),
    ]
}

/// What a mail client sends for the List-Unsubscribe mailto.
pub fn unsubscribe_mail(from: &str, mailto: &str) -> String {
    format!(
        "From: {from}\r\nTo: {mailto}\r\nSubject: unsubscribe\r\nDate: Tue, 24 Nov 2026 10:00:12 +0000\r\nMessage-ID: <unsub.{from}>\r\n\r\nunsubscribe\r\n"
    )
}

/// Input that must never crash the parser nor mark anything.
pub fn malformed() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"\0\xff\xfe garbage \x00".to_vec(),
        b"no headers at all, just text\r\n".to_vec(),
        b"From: MAILER-DAEMON@x\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; \r\nStatus: 5.1.1\r\n".to_vec(),
        b"From: postmaster@x\r\nSubject: Returned mail\r\nContent-Type: multipart/mixed; boundary=\"unterminated\r\n\r\n--unterminated\r\n\xc3\x28\xa0\xa1".to_vec(),
        format!(
            "From: MAILER-DAEMON@x\r\nSubject: Undelivered\r\nContent-Type: multipart/report; boundary=\"{}\"\r\n\r\n{}",
            "b".repeat(5000),
            "--b\r\n".repeat(2000)
        )
        .into_bytes(),
    ]
}
