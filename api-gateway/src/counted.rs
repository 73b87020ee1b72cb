//! Every answered request counted in `hopster_http_requests_total{route, status}`: the route is
//! the matched pattern (`/v1/jobs/{id}`, so ids do not blow up the label set), or `unmatched`
//! for a request no route took (404, 405, or refused before routing, such as a 401).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let answered = next.call(req).await;
    let (route, status) = match &answered {
        Ok(res) => (
            res.request().match_pattern(),
            res.status().as_u16().to_string(),
        ),
        Err(e) => (
            None,
            e.as_response_error().status_code().as_u16().to_string(),
        ),
    };
    hopster_common::metrics::count(
        "hopster_http_requests_total",
        &[
            ("route", route.as_deref().unwrap_or("unmatched")),
            ("status", &status),
        ],
        1.0,
    );
    answered
}
