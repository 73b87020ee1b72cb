//! The v1 API's one error format, `{"error": {"code": "...", "message": "..."}}`, mapped once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hopster_common::broker::BrokerError;
use hopster_common::store::StoreError;
use shared_proto::{ErrorBody, ErrorCode};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds): when a refused client may try again.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// `429 rate_limited`, with `Retry-After`.
    pub fn rate_limited(refused: crate::limits::Refused, message: impl Into<String>) -> Self {
        hopster_common::metrics::count(
            "hopster_rate_limited_total",
            &[("limit", refused.limit)],
            1.0,
        );
        ApiError {
            retry_after_secs: Some(refused.retry_after_secs()),
            ..ApiError::new(ErrorCode::RateLimited, message)
        }
    }
}

impl From<shared_proto::api::BodyError> for ApiError {
    fn from(e: shared_proto::api::BodyError) -> Self {
        ApiError::new(e.code, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        log::error!("store: {e}");
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable; try again shortly",
        )
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        log::error!("broker: {e}");
        ApiError::new(
            ErrorCode::BrokerUnavailable,
            "the job queue is unavailable; the job was not accepted, try again shortly",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::UnknownJob
            | ErrorCode::UnknownSource
            | ErrorCode::UnknownRoute
            | ErrorCode::NoPoster => StatusCode::NOT_FOUND,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::NotReady | ErrorCode::JobFailed | ErrorCode::JobFinished => {
                StatusCode::CONFLICT
            }
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::StoreUnavailable | ErrorCode::BrokerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(ErrorBody::new(self.code, self.message.as_str()))
    }
}
