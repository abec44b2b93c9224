from adaptcast.deploy.monitoring.cli import main

main()
