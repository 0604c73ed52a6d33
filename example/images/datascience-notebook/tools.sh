#!/bin/sh
# Stands in for installing a toolset: records it in the stack's tool list.
echo "datascience: $1" >> /opt/stack/tools.txt
