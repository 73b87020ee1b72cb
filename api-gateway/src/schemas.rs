//! Schemas the OpenAPI document names that are not bodies of the contract: a result's bytes.
//! The bodies themselves are `shared_proto::api`'s.

use utoipa::ToSchema;

/// A result's bytes (`GET /v1/jobs/{id}/video` and the like).
pub struct Bytes;

impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Bytes {}
