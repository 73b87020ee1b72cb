# Stand-in for localstack/localstack:<version> (test aid; see scripts/stand-in-images):
# localstack-core from PyPI at the tag's version on the debootstrapped bookworm (Python 3.11),
# with the pins it needs there, and awslocal, which the compose healthcheck and init hook use.
FROM debian:bookworm-slim
ARG LOCALSTACK_VERSION
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# The machine's trust store, for pip to reach PyPI through the machine's TLS inspection.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY localstack-requirements.txt /tmp/requirements.txt
# awslocal and the aws CLI in a venv of their own: awscli pins botocore exactly, and so does
# localstack-core.
RUN python3 -m venv /opt/localstack \
    && /opt/localstack/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements.txt "localstack-core[runtime]==${LOCALSTACK_VERSION}" \
    && python3 -m venv /opt/awscli \
    && /opt/awscli/bin/pip install --no-cache-dir --disable-pip-version-check awscli awscli-local \
    && ln -s /opt/awscli/bin/aws /opt/awscli/bin/awslocal /usr/local/bin/ \
    && mkdir -p /etc/localstack/init/ready.d /var/lib/localstack
ENV PATH=/opt/localstack/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUNTIME_COMPONENTS=aws GATEWAY_LISTEN=0.0.0.0:4566 AWS_DEFAULT_REGION=us-east-1
EXPOSE 4566
CMD ["python3", "-m", "localstack.runtime.main"]
