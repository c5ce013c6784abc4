from services.webhook_processor.app import main

main()
