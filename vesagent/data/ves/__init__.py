"""The official VES JSON schemas (v5: 28.4.1, v7: 30.2.1_ONAP); see PROVENANCE.md."""
