#!/bin/sh
# Runs inside localstack once S3 is ready: creates the bucket the services are configured with
# (HOPSTER__STORE__BUCKET in docker-compose.yml; a test keeps the two equal).
set -eu
awslocal s3 mb s3://hopster-media
