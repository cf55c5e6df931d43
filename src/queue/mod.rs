//! Mail-queue adapters. In-process is the default; RabbitMQ comes with `amqp_url`.

pub mod amqp;
pub mod memory;
