//! Shared HTTP for the platform connectors: one client, rate-limit headers read on every answer
//! (`x-rate-limit-*`, `X-RateLimit-*`, `RateLimit-*`), a budget that is never overspent, backoff
//! with jitter on 429 and 5xx, and errors in plain words. Secrets never appear in errors or logs.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PlatformError;

/// What the server last said about the request budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When the window resets.
    pub reset_at: Option<OffsetDateTime>,
}

impl Budget {
    /// How long to wait before the next request may be made without overspending.
    pub fn wait(&self, now: OffsetDateTime) -> Option<Duration> {
        match (self.remaining, self.reset_at) {
            (Some(0), Some(reset)) if reset > now => Some(Duration::from_secs(
                (reset - now).whole_seconds().unsigned_abs() + 1,
            )),
            _ => None,
        }
    }
}

/// Reads a rate-limit reset given as Unix seconds, as seconds from now (RateLimit-Reset of the
/// IETF draft, when the number is small), or as an ISO-8601 time (Mastodon).
fn parse_reset(value: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        // Anything below ten years of seconds is a delta, not an epoch time.
        return if n < 315_360_000 {
            Some(now + time::Duration::seconds(n))
        } else {
            OffsetDateTime::from_unix_timestamp(n).ok()
        };
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return OffsetDateTime::from_unix_timestamp(f as i64).ok();
    }
    OffsetDateTime::parse(v, &Rfc3339).ok()
}

/// The budget in a response's headers, whichever of the three spellings the platform uses.
pub fn parse_budget(headers: &HeaderMap, now: OffsetDateTime) -> Option<Budget> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.get(*n))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let limit = get(&["x-rate-limit-limit", "x-ratelimit-limit", "ratelimit-limit"]);
    let remaining = get(&[
        "x-rate-limit-remaining",
        "x-ratelimit-remaining",
        "ratelimit-remaining",
    ]);
    let reset = get(&["x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"]);
    if limit.is_none() && remaining.is_none() && reset.is_none() {
        return None;
    }
    let number = |s: Option<String>| {
        // `RateLimit-Limit: 100;w=60` carries a window after the number.
        s.and_then(|v| {
            v.split([';', ','])
                .next()
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
    };
    Some(Budget {
        limit: number(limit),
        remaining: number(remaining),
        reset_at: reset.and_then(|r| parse_reset(&r, now)),
    })
}

/// Seconds to wait after a 429, from `Retry-After` or the reset header.
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> u64 {
    if let Some(secs) = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return secs;
    }
    parse_budget(headers, now)
        .and_then(|b| b.reset_at)
        .map(|r| (r - now).whole_seconds().max(1) as u64)
        .unwrap_or(60)
}

/// Whether a request may be repeated safely after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read, or a write the platform deduplicates (idempotency key, client record key).
    Safe,
    /// A write that could post twice: one attempt only.
    Once,
}

/// One HTTP client with the budget of one account.
pub struct Http {
    client: Client,
    budget: Mutex<Budget>,
    /// Upper bound on a single wait for the budget or a backoff, so a poll never hangs for long.
    pub max_wait: Duration,
    pub attempts: u32,
}

impl Http {
    /// A client whose requests are abandoned after `timeout` (body included).
    pub fn new(timeout: Duration) -> Result<Http, PlatformError> {
        let client = Client::builder()
            .user_agent(concat!("tonedesk/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .map_err(|e| PlatformError::Local(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            budget: Mutex::new(Budget::default()),
            max_wait: Duration::from_secs(120),
            attempts: ATTEMPTS,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn budget(&self) -> Budget {
        self.budget.lock().map(|b| *b).unwrap_or_default()
    }

    /// Starts from a budget recorded earlier (by the last poll of this account, perhaps in
    /// another process) while its window lasts and until the server says anything newer, so
    /// that a new process does not spend what an earlier one already spent.
    pub fn resume_budget(&self, recorded: Budget, now: OffsetDateTime) {
        if recorded.reset_at.is_some_and(|reset| reset > now)
            && let Ok(mut slot) = self.budget.lock()
            && *slot == Budget::default()
        {
            *slot = recorded;
        }
    }

    fn note_budget(&self, headers: &HeaderMap) {
        if let Some(b) = parse_budget(headers, OffsetDateTime::now_utc())
            && let Ok(mut slot) = self.budget.lock()
        {
            *slot = b;
        }
    }

    fn spend_one(&self) {
        if let Ok(mut b) = self.budget.lock()
            && let Some(left) = b.remaining.as_mut()
        {
            *left = left.saturating_sub(1);
        }
    }

    /// Sends a request built by `make` (called again for each attempt), waiting for the budget
    /// first, retrying 429 and 5xx with exponential backoff and jitter when `retry` allows, and
    /// turning failures into [`PlatformError`]s. Returns the successful response.
    pub async fn send(
        &self,
        retry: Retry,
        make: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, PlatformError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(wait) = self.budget().wait(OffsetDateTime::now_utc()) {
                if wait > self.max_wait {
                    return Err(PlatformError::RateLimited {
                        retry_after_secs: wait.as_secs(),
                    });
                }
                tracing::info!(
                    seconds = wait.as_secs(),
                    "rate budget spent; waiting for the reset"
                );
                tokio::time::sleep(wait).await;
            }
            // Count the request against the budget now: an answer that never comes (a timeout, a
            // dropped connection) still spent it at the server.
            self.spend_one();
            let result = make(&self.client).send().await;
            let may_retry = retry == Retry::Safe && attempt < self.attempts;
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = network_error(&e);
                    if may_retry && (e.is_timeout() || e.is_connect()) {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            self.note_budget(response.headers());
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let now = OffsetDateTime::now_utc();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let secs = retry_after(response.headers(), now);
                let wait = Duration::from_secs(secs).max(backoff(attempt));
                if may_retry && wait <= self.max_wait {
                    tracing::warn!(seconds = wait.as_secs(), "429 from the server; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(PlatformError::RateLimited {
                    retry_after_secs: secs,
                });
            }
            if status.is_server_error() && may_retry {
                tracing::warn!(%status, attempt, "server error; backing off");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            return Err(status_error(status, &body));
        }
    }
}

impl Http {
    /// [`send`](Http::send), then the body read as JSON of type `T`, with the response's headers.
    /// When `retry` allows, a body that cannot be read or is not the JSON expected (cut short by a
    /// dropped connection, a proxy's error page behind a 200) is asked for again, with backoff, as
    /// a 5xx would be.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        retry: Retry,
        make: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<(HeaderMap, T), PlatformError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.send(retry, &make).await?;
            let headers = response.headers().clone();
            match json(response).await {
                Ok(v) => return Ok((headers, v)),
                Err(e) if retry == Retry::Safe && attempt < self.attempts => {
                    tracing::warn!(attempt, "unreadable answer ({e}); asking again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Attempts of a request that may be retried.
const ATTEMPTS: u32 = 4;

/// The longest a send's requests can keep reaching the platform after its intent was written,
/// with requests abandoned after `timeout`: every attempt timing out, the longest backoffs
/// between them, and one more `timeout` for the server to finish the last request. A send whose
/// sender died and whose post is not on the platform is only known to have failed after this.
/// (A send that first waited for a spent rate budget can take longer; that wait is rare for a
/// reply, which spends one request.)
pub fn longest_send(timeout: Duration) -> Duration {
    let backoffs: u64 = (1..ATTEMPTS).map(|a| 750u64 << (a - 1)).sum();
    timeout * (ATTEMPTS + 1) + Duration::from_millis(backoffs)
}

/// 0.5 s, 1 s, 2 s… up to 30 s, each with up to 50% random jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(30_000);
    let jitter = jitter_ms(base / 2);
    Duration::from_millis(base + jitter)
}

fn jitter_ms(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    // The low bits of the clock are random enough for spreading retries.
    let nanos = OffsetDateTime::now_utc().nanosecond() as u64;
    (nanos ^ (nanos >> 7)) % max
}

fn network_error(e: &reqwest::Error) -> PlatformError {
    // reqwest errors carry the URL, which never holds a secret here (tokens go in headers or
    // bodies, never in query strings).
    if e.is_timeout() {
        PlatformError::Network("the request timed out".into())
    } else if e.is_connect() {
        PlatformError::Network(format!("cannot connect: {e}"))
    } else if e.is_decode() || e.is_body() {
        PlatformError::Malformed(e.to_string())
    } else {
        PlatformError::Network(e.to_string())
    }
}

/// A non-success status in plain words, with the server's message when it gave one.
pub fn status_error(status: StatusCode, body: &str) -> PlatformError {
    // A server may echo what it was sent (a token in an error body): scrub every known secret.
    let body = super::credentials::scrub(body);
    let message = server_message(&body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_owned()
    });
    match status.as_u16() {
        401 | 403 => PlatformError::Auth(format!(
            "{} {message} (check the account's token or app password)",
            status.as_u16()
        )),
        code => PlatformError::Http {
            status: code,
            message,
        },
    }
}

/// The human message in an error body, cut to a sane length and stripped of control characters.
/// A machine error name (`error` in XRPC and OAuth bodies) is kept in front of the text
/// (`ExpiredToken: Token has expired`) so connectors can tell errors apart.
fn server_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let field = |k: &str| v.get(k).and_then(|m| m.as_str()).filter(|m| !m.is_empty());
    let name = field("error");
    let text = ["detail", "error_description", "message", "title"]
        .iter()
        .find_map(|k| field(k));
    let joined = match (name, text) {
        (Some(n), Some(t)) if n != t => format!("{n}: {t}"),
        (Some(n), _) => n.to_owned(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => return None,
    };
    Some(
        joined
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect(),
    )
}

/// Reads a successful response as JSON of type `T`, with a clear error when it is not.
pub async fn json<T: serde::de::DeserializeOwned>(r: Response) -> Result<T, PlatformError> {
    let bytes = r
        .bytes()
        .await
        .map_err(|e| PlatformError::Malformed(format!("the body could not be read: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| PlatformError::Malformed(format!("the body is not the JSON expected: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use time::macros::datetime;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const NOW: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

    #[test]
    fn reads_all_three_spellings() {
        let x = parse_budget(
            &headers(&[
                ("x-rate-limit-limit", "450"),
                ("x-rate-limit-remaining", "0"),
                (
                    "x-rate-limit-reset",
                    &(NOW.unix_timestamp() + 30).to_string(),
                ),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!((x.limit, x.remaining), (Some(450), Some(0)));
        assert_eq!(x.wait(NOW), Some(Duration::from_secs(31)));

        let m = parse_budget(
            &headers(&[
                ("X-RateLimit-Limit", "300"),
                ("X-RateLimit-Remaining", "299"),
                ("X-RateLimit-Reset", "2026-11-21T12:05:00.000Z"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(m.reset_at, Some(datetime!(2026-11-21 12:05 UTC)));
        assert_eq!(m.wait(NOW), None);

        let b = parse_budget(
            &headers(&[
                ("RateLimit-Limit", "3000;w=300"),
                ("RateLimit-Remaining", "0"),
                ("RateLimit-Reset", "20"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(b.limit, Some(3000));
        assert_eq!(b.reset_at, Some(NOW + time::Duration::seconds(20)));
        assert!(parse_budget(&HeaderMap::new(), NOW).is_none());
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(
            backoff(1) >= Duration::from_millis(500) && backoff(1) < Duration::from_millis(750)
        );
        assert!(backoff(3) >= Duration::from_secs(2));
        assert!(backoff(30) <= Duration::from_secs(45));
    }

    #[test]
    fn errors_say_what_happened() {
        let e = status_error(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"The access token is invalid"}"#,
        );
        assert!(matches!(e, PlatformError::Auth(_)));
        assert!(e.to_string().contains("token is invalid"), "{e}");
        let e = status_error(StatusCode::UNPROCESSABLE_ENTITY, "<html>\x1b[31m");
        assert_eq!(
            e.to_string(),
            "the server answered 422: Unprocessable Entity"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "7")]), NOW), 7);
        let e = status_error(
            StatusCode::BAD_REQUEST,
            r#"{"error":"ExpiredToken","message":"Token has expired"}"#,
        );
        assert_eq!(
            e.to_string(),
            "the server answered 400: ExpiredToken: Token has expired"
        );
    }

    #[tokio::test]
    async fn a_spent_budget_is_waited_out_before_the_next_request() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 2;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-rate-limit-limit", "1")
                    .insert_header("x-rate-limit-remaining", "0")
                    .insert_header("x-rate-limit-reset", reset.to_string().as_str()),
            )
            .expect(2)
            .mount(&server)
            .await;
        let http = Http::new(Duration::from_secs(30)).unwrap();
        let url = server.uri();
        http.send(Retry::Safe, |c| c.get(&url)).await.unwrap();
        assert_eq!(http.budget().remaining, Some(0));
        let before = std::time::Instant::now();
        http.send(Retry::Safe, |c| c.get(&url)).await.unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(now >= reset, "the second request went out before the reset");
        assert!(before.elapsed() >= Duration::from_millis(900));

        // A wait longer than max_wait is not slept through: it is reported.
        let mut impatient = Http::new(Duration::from_secs(30)).unwrap();
        impatient.max_wait = Duration::from_secs(1);
        *impatient.budget.lock().unwrap() = Budget {
            limit: Some(1),
            remaining: Some(0),
            reset_at: Some(OffsetDateTime::now_utc() + time::Duration::minutes(10)),
        };
        let e = impatient
            .send(Retry::Safe, |c| c.get(&url))
            .await
            .unwrap_err();
        assert!(matches!(e, PlatformError::RateLimited { .. }), "{e}");
        server.verify().await;
    }

    #[tokio::test]
    async fn a_request_without_an_answer_still_counts_against_the_budget() {
        // One request left: a request that times out spent it at the server, so the retry
        // waits for the reset instead of going out at once.
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let arrivals = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                seen.lock().unwrap().push(std::time::Instant::now());
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = sock.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        let mut http = Http::new(Duration::from_millis(300)).unwrap();
        http.attempts = 2;
        let reset = OffsetDateTime::now_utc() + time::Duration::seconds(2);
        let reset_instant = std::time::Instant::now() + Duration::from_secs(2);
        *http.budget.lock().unwrap() = Budget {
            limit: Some(10),
            remaining: Some(1),
            reset_at: Some(reset),
        };
        let e = http.send(Retry::Safe, |c| c.get(&url)).await.unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        let at = arrivals.lock().unwrap().clone();
        assert_eq!(at.len(), 2, "one retry");
        assert!(
            at[1] >= reset_instant,
            "the retry went out before the reset"
        );
    }
}
