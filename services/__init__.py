"""The RevOps AI Framework services: one package per Kafka-consuming process."""
