import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateUsers1718000000000 implements MigrationInterface {
  name = 'CreateUsers1718000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "users" ("id" SERIAL PRIMARY KEY, "email" varchar NOT NULL UNIQUE, "password_hash" varchar NOT NULL, "created_at" TIMESTAMP NOT NULL DEFAULT now())`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "users"`);
  }
}
