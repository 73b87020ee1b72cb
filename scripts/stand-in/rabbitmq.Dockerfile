# Stand-in for rabbitmq:<version>-management (test aid; see scripts/stand-in-images): Debian
# bookworm's rabbitmq-server (3.10, not the tag's version) with the management plugin, set up
# as the official image is: guest may log in from other hosts, the node is named after the
# container's host name, the server runs in the foreground as the rabbitmq user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && printf 'loopback_users.guest = false\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n' \
        > /etc/rabbitmq/rabbitmq.conf \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
ENV HOME=/var/lib/rabbitmq RABBITMQ_LOGS=-
USER rabbitmq
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
