//! The v1 API's one error format, `{"error": {"code": "...", "message": "..."}}`, mapped once.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hopster_common::broker::BrokerError;
use hopster_common::store::StoreError;
use shared_proto::{ErrorCode, SpecError};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// Whether the client can fix it by changing the request.
    pub fn is_client_error(&self) -> bool {
        self.status_code().is_client_error()
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        ApiError::new(e.code(), e.to_string())
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
            ErrorCode::UnknownJob | ErrorCode::UnknownRoute | ErrorCode::NoPoster => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotReady | ErrorCode::JobFailed | ErrorCode::JobFinished => {
                StatusCode::CONFLICT
            }
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StoreUnavailable | ErrorCode::BrokerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        }))
    }
}
