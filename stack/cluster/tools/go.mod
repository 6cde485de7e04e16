module durable-email-delivery/stack/cluster/tools

go 1.24
