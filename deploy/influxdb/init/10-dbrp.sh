#!/bin/sh
# InfluxDB 2.x (the influxdb:2 image runs this once, after its initial setup): map the
# database name the Grafana datasource queries in InfluxQL to the bucket (docs/grafana.md).
set -eu
influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${DOCKER_INFLUXDB_INIT_BUCKET}" \
  --rp autogen \
  --default \
  --token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}"
