//! The documents generated for the scoring script, in the reference's shape per version.

use serde_json::{json, Map, Value};

use super::{DeclaredSchemas, ServiceDescription, SwaggerVersion};

/// The schema used for `ServiceInput`/`ServiceOutput` when `run()` is not decorated.
fn undecorated_schema() -> Value {
    json!({"type": "object", "example": {}})
}

pub(super) fn generated_document(
    version: SwaggerVersion,
    service: &ServiceDescription,
    declared: &DeclaredSchemas,
) -> Value {
    let path_prefix = service.normalised_path_prefix();
    let input = declared.input.clone().unwrap_or_else(undecorated_schema);
    let output = declared.output.clone().unwrap_or_else(undecorated_schema);
    match version {
        SwaggerVersion::V2 => swagger2_document(service, &path_prefix, input, output),
        SwaggerVersion::V3 => openapi3_document("3.0.3", service, &path_prefix, input, output),
        SwaggerVersion::V3_1 => openapi3_document("3.1.0", service, &path_prefix, input, output),
    }
}

fn info(service: &ServiceDescription) -> Value {
    json!({
        "title": service.service_name,
        "description": format!(
            "API specification for the Azure Machine Learning service {}",
            service.service_name
        ),
        "version": service.service_version,
    })
}

/// The three documented routes under the prefix, in the reference's order.
fn paths(path_prefix: &str, health: Value, score: Value, swagger: Value) -> Value {
    let mut paths = Map::new();
    paths.insert(format!("{path_prefix}/"), json!({"get": health}));
    paths.insert(format!("{path_prefix}/score"), json!({"post": score}));
    paths.insert(
        format!("{path_prefix}/swagger.json"),
        json!({"get": swagger}),
    );
    Value::Object(paths)
}

fn bearer_security_scheme() -> Value {
    json!({
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    })
}

fn error_response_schema() -> Value {
    json!({"type": "object", "properties": {"message": {"type": "string"}}})
}

const HEALTH_OPERATION_ID: &str = "ServiceHealthCheck";
const HEALTH_DESCRIPTION: &str =
    "Simple health check endpoint to ensure the service is up at any given point.";
const HEALTH_OK_DESCRIPTION: &str =
    "If service is up and running, this response will be returned with the content 'Healthy'";
const SCORE_OPERATION_ID: &str = "RunMLService";
const SCORE_DESCRIPTION: &str = "Run web service's model and get the prediction output";
const SCORE_INPUT_DESCRIPTION: &str =
    "The input payload for executing the real-time machine learning service.";
const SCORE_OK_DESCRIPTION: &str =
    "The service processed the input correctly and provided a result prediction, if applicable.";
const SWAGGER_OPERATION_ID: &str = "GetSwaggerSpec";
const SWAGGER_DESCRIPTION: &str = "Get the Swagger specification.";
const SWAGGER_OK_DESCRIPTION: &str = "The Swagger specification.";
const ERROR_DESCRIPTION: &str = "The service failed to execute due to an error.";

fn swagger2_document(
    service: &ServiceDescription,
    path_prefix: &str,
    input: Value,
    output: Value,
) -> Value {
    let error_response = || {
        json!({
            "description": ERROR_DESCRIPTION,
            "schema": {"$ref": "#/definitions/ErrorResponse"},
        })
    };
    let health = json!({
        "operationId": HEALTH_OPERATION_ID,
        "description": HEALTH_DESCRIPTION,
        "responses": {
            "200": {
                "description": HEALTH_OK_DESCRIPTION,
                "schema": {"type": "string"},
                "examples": {"application/json": "Healthy"},
            },
            "default": error_response(),
        },
    });
    let score = json!({
        "operationId": SCORE_OPERATION_ID,
        "description": SCORE_DESCRIPTION,
        "security": [{"Bearer": []}],
        "parameters": [{
            "name": "serviceInputPayload",
            "in": "body",
            "description": SCORE_INPUT_DESCRIPTION,
            "schema": {"$ref": "#/definitions/ServiceInput"},
        }],
        "responses": {
            "200": {
                "description": SCORE_OK_DESCRIPTION,
                "schema": {"$ref": "#/definitions/ServiceOutput"},
            },
            "default": error_response(),
        },
    });
    // The reference advertises only 2 and 3 here, although it serves 3.1 too.
    let swagger = json!({
        "operationId": SWAGGER_OPERATION_ID,
        "description": SWAGGER_DESCRIPTION,
        "parameters": [{
            "name": "version",
            "in": "query",
            "required": false,
            "type": "integer",
            "enum": [2, 3],
        }],
        "responses": {
            "200": {"description": SWAGGER_OK_DESCRIPTION, "schema": {"type": "string"}},
            "default": error_response(),
        },
    });
    json!({
        "swagger": "2.0",
        "info": info(service),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": bearer_security_scheme()},
        "paths": paths(path_prefix, health, score, swagger),
        "definitions": {
            "ServiceInput": input,
            "ServiceOutput": output,
            "ErrorResponse": error_response_schema(),
        },
    })
}

fn openapi3_document(
    openapi_version: &str,
    service: &ServiceDescription,
    path_prefix: &str,
    input: Value,
    output: Value,
) -> Value {
    let json_content =
        |reference: &str| json!({"application/json": {"schema": {"$ref": reference}}});
    let error_response = || {
        json!({
            "description": ERROR_DESCRIPTION,
            "content": json_content("#/components/schemas/ErrorResponse"),
        })
    };
    let health = json!({
        "operationId": HEALTH_OPERATION_ID,
        "description": HEALTH_DESCRIPTION,
        "responses": {
            "200": {
                "description": HEALTH_OK_DESCRIPTION,
                "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}},
            },
            "default": error_response(),
        },
    });
    let score = json!({
        "operationId": SCORE_OPERATION_ID,
        "description": SCORE_DESCRIPTION,
        "security": [{"Bearer": []}],
        "requestBody": {
            "description": SCORE_INPUT_DESCRIPTION,
            "content": json_content("#/components/schemas/ServiceInput"),
        },
        "responses": {
            "200": {
                "description": SCORE_OK_DESCRIPTION,
                "content": json_content("#/components/schemas/ServiceOutput"),
            },
            "default": error_response(),
        },
    });
    let swagger = json!({
        "operationId": SWAGGER_OPERATION_ID,
        "description": SWAGGER_DESCRIPTION,
        "parameters": [{
            "name": "version",
            "in": "query",
            "required": false,
            "schema": {"type": "integer", "enum": [2, 3]},
        }],
        "responses": {
            "200": {
                "description": SWAGGER_OK_DESCRIPTION,
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "default": error_response(),
        },
    });
    json!({
        "openapi": openapi_version,
        "info": info(service),
        "security": [{"Bearer": []}],
        "paths": paths(path_prefix, health, score, swagger),
        "components": {
            "schemas": {
                "ServiceInput": input,
                "ServiceOutput": output,
                "ErrorResponse": error_response_schema(),
            },
            "securitySchemes": {"Bearer": bearer_security_scheme()},
        },
    })
}
